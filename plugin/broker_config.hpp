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

#include "status.hpp"

namespace twins {

struct AccessSetup {
  bool others_decide = false;     // an acl_file, or a plugin other than this one
  std::string plugin_before_us;   // the first other plugin loaded before this one, if any
  std::string acl_file;           // for the log
  // Not about access: the broker's sys_interval (seconds, 0 = no $SYS), which 2.0 does not
  // tell plugins; the plugin publishes its own $SYS topics at the same pace.
  int sys_interval = 10;
};

// Reads `config_path` and the files of its include_dir lines, in the order mosquitto reads
// them. `own_plugin` is this plugin's file; plugin lines naming it (through any path) are ours.
Result<AccessSetup> ReadAccessSetup(const std::string& config_path, const std::string& own_plugin);

// The -c/--config-file argument of the running process, made absolute; nullopt when the
// broker was started without one (it then runs with built-in defaults).
std::optional<std::string> RunningBrokerConfigPath();

}  // namespace twins
