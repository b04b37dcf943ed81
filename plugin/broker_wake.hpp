// The broker wake: work that other threads hand to the broker thread (BrokerQueue) runs within
// a fraction of a millisecond instead of at the broker's next tick (an idle Mosquitto 2.0 sleeps
// up to 100 ms in epoll_wait; 2.1 ticks before network handling, so what a tick publishes
// waits for the next wake-up).
//
// How: the plugin holds one MQTT connection to one of the broker's own plain listeners (read
// from its configuration, or plugin_opt_wake_address), spoken by a small hand-written MQTT
// 3.1.1 client on a thread of its own (libmosquitto's client functions are not used inside the
// broker). When work is queued, that thread sends one tiny QoS 0 PUBLISH on the wake topic; its
// MESSAGE callback, on the broker thread, drains the queue there and drops the message.
//
// The connection authenticates with a secret drawn at start (its client id and username are
// fixed, so only the secret counts). The plugin's basic-auth callback accepts it and leaves
// every other client to the broker as before (WakeAuthFor); its access check lets it publish
// the wake topic and nothing else, which nobody may read (it is in $SCW/twins/).
//
// Thread-safety: Request() from any thread; Start() and the identity checks on the broker thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <thread>

#include "common/log.hpp"
#include "common/status.hpp"
#include "plugin/broker_config.hpp"

namespace twins {

inline constexpr std::string_view kWakeTopic = "$SCW/twins/_wake";
inline constexpr std::string_view kWakeClientId = "mosquitto-twins-wake";  // also its username

// Where the wake connects: a TCP host and port, or a Unix socket path.
struct WakeTarget {
  std::string host;  // IPv4 or IPv6 literal, or a name
  int port = 0;
  std::string unix_path;
  std::string Describe() const;
};

// plugin_opt_wake_address: "host:port" ("[v6]:port"), a Unix socket path (starting with '/'),
// or "off" (then `off` is set). Empty: read the broker's listeners.
Status ParseWakeAddress(const std::string& value, WakeTarget* target, bool* off);

// The first listener of `setup` a plain MQTT client on this host can use (not TLS, not
// websockets, no mount_point, ...), or an error saying why none is, for the log.
Result<WakeTarget> ChooseWakeTarget(const BrokerSetup& setup);

// What the plugin's basic-auth callback answers for a client that is not the wake connection.
enum class OthersAuth {
  kIgnore,  // Mosquitto 2.1: MOSQ_ERR_PLUGIN_IGNORE, as if the callback did not exist
  kDefer,   // someone else authenticates (password_file, another plugin): they decide
  kAllow,   // 2.0, nobody else authenticates and anonymous clients are allowed: all are let in
};
// On 2.0 a deferring callback is not neutral: without any callback, allow_anonymous true lets
// clients with a username in, with one that defers it refuses them. `broker_has_ignore`: the
// broker is 2.1 or later.
OthersAuth WakeAuthFor(const BrokerSetup& setup, bool broker_has_ignore);

enum class WakeCredentials {
  kWake,      // the wake's client id or username, with the secret
  kImpostor,  // the wake's client id or username without the secret: refused
  kOther,
};

class BrokerWake {
 public:
  // `log`: a deferred log (it is called from the wake thread). `connected`: set to 1 while the
  // connection is up (a gauge). Nothing connects before Start().
  BrokerWake(WakeTarget target, LogFn log, std::function<void(bool)> connected);
  ~BrokerWake();  // stops the thread and closes the connection
  BrokerWake(const BrokerWake&) = delete;
  BrokerWake& operator=(const BrokerWake&) = delete;

  // Broker thread, once the broker listens (the first tick): starts the client thread.
  void Start();
  // Broker thread: stops the client thread (at cleanup). Request() stays harmless.
  void Stop();
  // Any thread, never blocks: one PUBLISH on the wake topic, as soon as the connection is up.
  void Request();

  // Broker thread: the credentials of a connecting client.
  WakeCredentials Check(const char* client_id, const char* username, const char* password) const;
  // Broker thread: the connection that authenticated as the wake (nullptr when none).
  void SetConnection(const void* connection) { connection_ = connection; }
  const void* connection() const { return connection_; }
  const WakeTarget& target() const { return target_; }

 private:
  void Run();
  // Connects, sends CONNECT and waits for CONNACK; -1 and `why` on failure.
  int Connect(std::string* why) const;

  const WakeTarget target_;
  const LogFn log_;
  const std::function<void(bool)> connected_;
  std::string secret_;
  const void* connection_ = nullptr;
  std::atomic<bool> stopping_{false};
  int event_fd_ = -1;  // Request() and the destructor write it: the thread polls it beside the socket
  std::thread thread_;
};

}  // namespace twins
