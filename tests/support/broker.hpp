// A real mosquitto with the built plugin, on a free loopback port, with its database and log
// in a temporary directory, started by tests/support/start_broker.sh (the launcher of every
// broker of the tests). The broker is Debian's /usr/sbin/mosquitto unless TWINS_MOSQUITTO
// names another binary (scripts/compat.sh runs the broker tests against upstream builds).
#pragma once

#include <string>
#include <sys/types.h>

#include "tests/support/loopback.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins::test {

// The broker binary under test: $TWINS_MOSQUITTO, else /usr/sbin/mosquitto.
std::string MosquittoBinary();
// A plugin shipped with that broker (e.g. "mosquitto_dynamic_security.so"): in
// $TWINS_MOSQUITTO_PLUGINS, else Debian's /usr/lib/x86_64-linux-gnu.
std::string BrokerPlugin(const std::string& file);
// The broker's version from its start line in `log` ("2.0.11"), or empty.
std::string BrokerVersion(const std::string& log);
// True when `version` (e.g. "2.0.11") is at least major.minor.patch.
bool VersionAtLeast(const std::string& version, int major, int minor, int patch);

class Broker {
 public:
  // `plugin_options`: extra lines for the end of the config, e.g. "plugin_opt_max_depth 4\n";
  // `global_options`: lines for its start, before any listener.
  explicit Broker(std::string plugin_options = "", std::string global_options = "");
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // Starts mosquitto and waits for its listener; false if it exited or never listened.
  bool Start();
  // SIGTERM and wait: a clean shutdown.
  void Stop();
  // After Stop(): the broker exited with status 0 and no sanitizer report in its log.
  bool exited_cleanly() const;
  // SIGKILL and wait: a crash.
  void Kill();
  // SIGHUP: mosquitto reloads its configuration.
  void Reload();

  // Before Start(): run the same configuration without mosquitto_twins (and its options), to
  // compare the broker's own behaviour with and without the plugin.
  void WithoutPlugin() { load_plugin_ = false; }
  // Sends SIGSTOP / SIGCONT, so that what clients send meanwhile is read in one loop pass.
  void Pause();
  void Resume();
  // Waits until the broker's log contains `text`; false after timeout_ms.
  bool WaitForLog(const std::string& text, int timeout_ms = 5000) const;
  // The broker's resident memory, from /proc, in KiB.
  long RssKib() const;

  int port() const { return port_; }
  std::string log() const;
  const TempDir& dir() const { return dir_; }
  std::string db_path() const { return dir_.sub("db"); }

 private:
  TempDir dir_;
  std::string plugin_options_;
  std::string global_options_;
  int port_;
  pid_t pid_ = -1;
  bool load_plugin_ = true;
  int exit_status_ = -1;
};

}  // namespace twins::test
