#include "plugin/broker_config.hpp"

#include <dirent.h>
#include <limits.h>  // NOLINT(modernize-deprecated-headers): POSIX PATH_MAX
#include <stdlib.h>  // NOLINT(modernize-deprecated-headers): POSIX realpath
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
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

// Mosquitto reads include_dir in the main configuration file only.
enum class ConfigFile { kMain, kIncluded };

Status ScanFile(const std::string& path, Scan& scan, ConfigFile kind) {
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
      OthersDecide(scan, key + " " + value);
      scan.setup.acl_file = value;
    } else if (key == "plugin" || key == "auth_plugin" || key == "global_plugin" || key == "plugin_load") {
      // Mosquitto 2.1: plugin_load <name> <path>.
      const std::string file = key == "plugin_load" ? value.substr(value.find_first_of(" \t") + 1) : value;
      if (IsOwn(scan, file)) {
        scan.seen_own = true;
        continue;
      }
      OthersDecide(scan, key + " " + value);
      if (!scan.seen_own && scan.setup.plugin_before_us.empty()) scan.setup.plugin_before_us = file;
    } else if (key == "sys_interval") {
      char* end = nullptr;
      const long seconds = std::strtol(value.c_str(), &end, 10);
      if (end != value.c_str() && *end == '\0' && seconds >= 0 && seconds <= 65535) {
        scan.setup.sys_interval = static_cast<int>(seconds);
      }
    } else if (key == "include_dir" && kind == ConfigFile::kMain) {
      auto files = IncludedFiles(value);
      if (!files.ok()) return files.status();
      for (const std::string& file : *files) {
        Status s = ScanFile(file, scan, ConfigFile::kIncluded);
        if (!s.ok()) return s;
      }
    }
  }
  return Status::Ok();
}

}  // namespace

Result<AccessSetup> ReadAccessSetup(const std::vector<std::string>& config_paths, const std::string& own_plugin) {
  Scan scan{RealPath(own_plugin)};
  for (const std::string& path : config_paths) {
    Status s = ScanFile(path, scan, ConfigFile::kMain);
    if (!s.ok()) return s;
  }
  return scan.setup;
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
