#include "broker_config.hpp"

#include <dirent.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace twins {
namespace {

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path;
}

// mosquitto reads the *.conf files of an include_dir in byte order of their names.
Result<std::vector<std::string>> IncludedFiles(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return Status::InvalidArgument("include_dir", "cannot read include_dir " + dir);
  std::vector<std::string> files;
  while (dirent* entry = readdir(d)) {
    std::string name = entry->d_name;
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".conf") == 0) files.push_back(dir + "/" + name);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

struct Scan {
  const std::string own;
  bool seen_own = false;
  AccessSetup setup;
};

Status ScanFile(const std::string& path, Scan& scan, int depth) {
  if (depth > 8) return Status::InvalidArgument("include_dir", "include_dir nested too deeply at " + path);
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
    if (key == "acl_file") {
      scan.setup.others_decide = true;
      scan.setup.acl_file = value;
    } else if (key == "plugin" || key == "auth_plugin" || key == "global_plugin") {
      if (RealPath(value) == scan.own) {
        scan.seen_own = true;
        continue;
      }
      scan.setup.others_decide = true;
      if (!scan.seen_own && scan.setup.plugin_before_us.empty()) scan.setup.plugin_before_us = value;
    } else if (key == "sys_interval") {
      char* end = nullptr;
      const long seconds = std::strtol(value.c_str(), &end, 10);
      if (end != value.c_str() && *end == '\0' && seconds >= 0 && seconds <= 65535) {
        scan.setup.sys_interval = static_cast<int>(seconds);
      }
    } else if (key == "include_dir") {
      auto files = IncludedFiles(value);
      if (!files.ok()) return files.status();
      for (const std::string& file : *files) {
        Status s = ScanFile(file, scan, depth + 1);
        if (!s.ok()) return s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<AccessSetup> ReadAccessSetup(const std::string& config_path, const std::string& own_plugin) {
  Scan scan{RealPath(own_plugin), false, {}};
  Status s = ScanFile(config_path, scan, 0);
  if (!s.ok()) return s;
  return scan.setup;
}

std::optional<std::string> RunningBrokerConfigPath() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::vector<std::string> args;
  for (std::string arg; std::getline(in, arg, '\0');) args.push_back(arg);
  for (size_t i = 1; i + 1 < args.size(); ++i) {
    if (args[i] == "-c" || args[i] == "--config-file") {
      const std::string& path = args[i + 1];
      if (!path.empty() && path[0] == '/') return path;
      char cwd[PATH_MAX];
      return getcwd(cwd, sizeof cwd) != nullptr ? std::string(cwd) + "/" + path : path;
    }
  }
  return std::nullopt;
}

}  // namespace twins
