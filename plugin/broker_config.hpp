// What the broker's own configuration says about access checking, read from the file the
// running mosquitto was started with.
//
// Why: Mosquitto 2.0 asks its access-check callbacks in order and denies when all of them
// defer, but allows everything when none is registered. The plugin's check must therefore
// defer outside twin topics when an acl_file or another plugin decides, and allow when none
// does; no broker function tells a plugin which case it is in.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace twins {

struct AccessSetup {
  bool others_decide = false;    // an acl_file, or a plugin other than this one
  std::string decided_by;        // the first line that made others_decide, for the log
  std::string plugin_before_us;  // the first other plugin loaded before this one, if any
  std::string acl_file;          // for the log
  // Not about access: the broker's sys_interval (seconds, 0 = no $SYS), which 2.0 does not
  // tell plugins; the plugin publishes its own $SYS topics at the same pace.
  int sys_interval = 10;
};

// Reads the files mosquitto reads (each `-c` file in turn, and the *.conf files of an
// include_dir line of those, in mosquitto's order: include_dir is followed in the main files
// only). `own_plugin` is this plugin's file; plugin lines naming it (any path) are ours.
// A file that cannot be read is an error naming it.
Result<AccessSetup> ReadAccessSetup(const std::vector<std::string>& config_paths, const std::string& own_plugin);

// A listener of the broker's configuration, as the wake connection (broker_wake.hpp) sees it.
struct ListenerConfig {
  int port = 1883;
  std::string address;        // bind address or host name; empty: every address
  std::string unix_path;      // `listener 0 <path>`: a Unix socket
  std::string socket_domain;  // ipv4, ipv6, or empty
  bool tls = false;           // certfile or psk_hint
  bool websockets = false;
  std::string unusable;  // a setting a plain client cannot meet: mount_point, bind_interface, enable_proxy_protocol
  std::string line;      // how the configuration declares it, for the log
};

// What the broker's configuration says about its listeners and who authenticates clients.
struct BrokerSetup {
  std::vector<ListenerConfig> listeners;  // in the broker's order; none configured: the loopback one
  bool per_listener_settings = false;
  bool allow_anonymous = false;  // the global setting, or mosquitto's default for the listeners
  bool password_file = false;    // a global or per-listener password_file
  bool other_plugins = false;    // a plugin line that is not this plugin
};

// Reads the files as ReadAccessSetup does. A file that cannot be read is an error naming it.
Result<BrokerSetup> ReadBrokerSetup(const std::vector<std::string>& config_paths, const std::string& own_plugin);

// The -c/--config-file arguments of the running process, made absolute; empty when the
// broker was started without one (it then runs with built-in defaults).
std::vector<std::string> RunningBrokerConfigPaths();

}  // namespace twins
