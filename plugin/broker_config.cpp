#include "plugin/broker_config.hpp"

#include <dirent.h>
#include <limits.h>  // NOLINT(modernize-deprecated-headers): POSIX PATH_MAX
#include <stdlib.h>  // NOLINT(modernize-deprecated-headers): POSIX realpath
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <utility>
#include <vector>

namespace twins {
namespace {

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

// mosquitto reads the *.conf files of an include_dir sorted by name, ignoring case.
Result<std::vector<std::string>> IncludedFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return Status::InvalidArgument("include_dir", "cannot read include_dir " + dir);
  std::vector<std::string> files;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".conf") == 0) files.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(files.begin(), files.end(),
            [](const std::string& a, const std::string& b) { return strcasecmp(a.c_str(), b.c_str()) < 0; });
  return files;
}

struct Scan {
  explicit Scan(std::string own_plugin) : own(std::move(own_plugin)) {}

  const std::string own;
  bool seen_own = false;
  AccessSetup setup;
};

void OthersDecide(Scan& scan, const std::string& line) {
  if (!scan.setup.others_decide) scan.setup.decided_by = line;
  scan.setup.others_decide = true;
}

// Whether an unrelated plugin line names this plugin (its path, through links or not).
bool IsOwn(const Scan& scan, const std::string& path) { return RealPath(path) == scan.own; }

using LineFn = std::function<void(const std::string& key, const std::string& value)>;

// Calls `on_line` for each setting of `path` (and of the files of its include_dir lines, in
// mosquitto's order, when it is a main file), comments and blank lines skipped.
// Mosquitto reads include_dir in the main configuration file only.
enum class ConfigFile { kMain, kIncluded };

Status ForEachSetting(const std::string& path, ConfigFile kind, const LineFn& on_line) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("config", "cannot read the broker configuration " + path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string key, value;
    words >> key;
    if (key.empty() || key[0] == '#') continue;
    std::getline(words >> std::ws, value);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r')) value.pop_back();
    if (key == "include_dir" && kind == ConfigFile::kMain) {
      auto files = IncludedFiles(value);
      if (!files.ok()) return files.status();
      for (const std::string& file : *files) {
        Status s = ForEachSetting(file, ConfigFile::kIncluded, on_line);
        if (!s.ok()) return s;
      }
    } else {
      on_line(key, value);
    }
  }
  return Status::Ok();
}

Status ForEachSetting(const std::vector<std::string>& config_paths, const LineFn& on_line) {
  for (const std::string& path : config_paths) {
    Status s = ForEachSetting(path, ConfigFile::kMain, on_line);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// Mosquitto 2.1: plugin_load <name> <path>.
bool IsPluginLine(const std::string& key) {
  return key == "plugin" || key == "auth_plugin" || key == "global_plugin" || key == "plugin_load";
}
std::string PluginFileOf(const std::string& key, const std::string& value) {
  return key == "plugin_load" ? value.substr(value.find_first_of(" \t") + 1) : value;
}

void ScanLine(Scan& scan, const std::string& key, const std::string& value) {
  if (key == "acl_file") {
    OthersDecide(scan, key + " " + value);
    scan.setup.acl_file = value;
  } else if (IsPluginLine(key)) {
    const std::string file = PluginFileOf(key, value);
    if (IsOwn(scan, file)) {
      scan.seen_own = true;
      return;
    }
    OthersDecide(scan, key + " " + value);
    if (!scan.seen_own && scan.setup.plugin_before_us.empty()) scan.setup.plugin_before_us = file;
  } else if (key == "sys_interval") {
    char* end = nullptr;
    const long seconds = std::strtol(value.c_str(), &end, 10);
    if (end != value.c_str() && *end == '\0' && seconds >= 0 && seconds <= 65535) {
      scan.setup.sys_interval = static_cast<int>(seconds);
    }
  }
}

// The default listener (`port`, `bind_address`, and listener settings before any `listener`
// line) comes first in the broker's list, whenever it is declared.
ListenerConfig& DefaultListener(BrokerSetup& setup, bool& default_made) {
  if (!default_made) {
    setup.listeners.insert(setup.listeners.begin(), ListenerConfig{});
    setup.listeners.front().line = "port 1883";
    default_made = true;
  }
  return setup.listeners.front();
}

void ListenerLine(BrokerSetup& setup, bool& default_made, bool& any_listener, const std::string& key,
                  const std::string& value) {
  if (key == "listener") {
    ListenerConfig listener;
    listener.line = "listener " + value;
    std::istringstream words(value);
    std::string address;
    words >> listener.port >> address;
    (listener.port == 0 ? listener.unix_path : listener.address) = address;
    setup.listeners.push_back(std::move(listener));
    any_listener = true;
    return;
  }
  static const char* const kListenerKeys[] = {"port",        "bind_address",   "certfile",
                                              "psk_hint",    "protocol",       "socket_domain",
                                              "mount_point", "bind_interface", "enable_proxy_protocol"};
  if (std::find(std::begin(kListenerKeys), std::end(kListenerKeys), key) == std::end(kListenerKeys)) return;
  const bool for_default = key == "port" || key == "bind_address" || !any_listener;
  ListenerConfig& listener = for_default ? DefaultListener(setup, default_made) : setup.listeners.back();
  if (key == "port") {
    listener.port = std::atoi(value.c_str());
    listener.line = "port " + value;
  } else if (key == "bind_address") {
    listener.address = value;
  } else if (key == "certfile" || key == "psk_hint") {
    listener.tls = true;
  } else if (key == "protocol") {
    listener.websockets = value == "websockets";
  } else if (key == "socket_domain") {
    listener.socket_domain = value;
  } else {
    listener.unusable = key;  // enable_proxy_protocol, bind_interface, mount_point
  }
}

}  // namespace

Result<AccessSetup> ReadAccessSetup(const std::vector<std::string>& config_paths, const std::string& own_plugin) {
  Scan scan{RealPath(own_plugin)};
  Status s = ForEachSetting(config_paths,
                            [&scan](const std::string& key, const std::string& value) { ScanLine(scan, key, value); });
  if (!s.ok()) return s;
  return scan.setup;
}

Result<BrokerSetup> ReadBrokerSetup(const std::vector<std::string>& config_paths, const std::string& own_plugin) {
  BrokerSetup setup;
  bool default_made = false, any_listener = false;
  std::optional<bool> allow_anonymous;
  const std::string own = RealPath(own_plugin);
  Status s = ForEachSetting(config_paths, [&](const std::string& key, const std::string& value) {
    ListenerLine(setup, default_made, any_listener, key, value);
    if (key == "per_listener_settings") setup.per_listener_settings = value == "true";
    if (key == "allow_anonymous") allow_anonymous = value == "true";
    if (key == "password_file") setup.password_file = true;
    if (IsPluginLine(key) && RealPath(PluginFileOf(key, value)) != own) setup.other_plugins = true;
  });
  if (!s.ok()) return s;
  // No listener at all: mosquitto 2 listens on the loopback addresses, port 1883, and lets
  // anonymous clients in; with a listener, allow_anonymous defaults to false.
  if (setup.listeners.empty()) {
    setup.listeners.push_back({});
    setup.listeners.back().address = "localhost";
    setup.listeners.back().line = "(no listener: port 1883 on localhost)";
    if (!allow_anonymous) allow_anonymous = true;
  }
  setup.allow_anonymous = allow_anonymous.value_or(false);
  return setup;
}

std::vector<std::string> RunningBrokerConfigPaths() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  std::vector<std::string> paths;
  char cwd[PATH_MAX];
  const std::string here = getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" : std::string();
  for (size_t i = 1; i + 1 < args.size(); ++i) {
    if (args[i] == "-c" || args[i] == "--config-file") {
      const std::string& path = args[++i];
      paths.push_back(!path.empty() && path[0] == '/' ? path : here + path);
    }
  }
  return paths;
}

}  // namespace twins
