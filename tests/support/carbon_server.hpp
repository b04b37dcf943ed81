// A private carbon-cache for tests (Debian graphite-carbon): configuration and storage in
// a folder of the test's, free ports on 127.0.0.1, killed when the object dies. Points are
// read back with python3-whisper's whisper-fetch from the file carbon derives from the
// tagged series (tags sorted, SHA-256 of the result).
#pragma once

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/loopback.hpp"

extern char** environ;

namespace twins::test {

// Standard output of a shell command.
inline std::string CommandOutput(const std::string& command) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  pclose(pipe);
  return out;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class CarbonServer {
 public:
  explicit CarbonServer(std::string dir) : dir_(std::move(dir)) {
    const std::vector<int> ports = FreePorts(3);
    line_port_ = ports[0];
    for (const char* sub : {"conf", "storage/whisper", "storage/lists", "log", "run"}) {
      std::filesystem::create_directories(dir_ + "/" + sub);
    }
    std::ofstream(dir_ + "/conf/carbon.conf")
        << "[cache]\n"
        << "STORAGE_DIR = " << dir_ << "/storage\n"
        << "LOCAL_DATA_DIR = " << whisper_dir() << "\n"
        << "WHITELISTS_DIR = " << dir_ << "/storage/lists\n"
        << "CONF_DIR = " << dir_ << "/conf\n"
        << "LOG_DIR = " << dir_ << "/log\n"
        << "PID_DIR = " << dir_ << "/run\n"
        << "ENABLE_LOGROTATION = False\nUSER =\n"
        << "ENABLE_TAGS = False\n"  // no graphite-web to tell about tags
        << "MAX_CACHE_SIZE = inf\nMAX_UPDATES_PER_SECOND = inf\nMAX_CREATES_PER_MINUTE = inf\n"
        << "LINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = " << ports[0] << "\n"
        << "ENABLE_UDP_LISTENER = False\n"
        << "PICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = " << ports[1] << "\n"
        << "CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = " << ports[2] << "\n";
    std::ofstream(dir_ + "/conf/storage-schemas.conf") << "[default]\npattern = .*\nretentions = 1s:1h\n";
  }
  ~CarbonServer() { Kill(); }
  CarbonServer(const CarbonServer&) = delete;
  CarbonServer& operator=(const CarbonServer&) = delete;

  // Starts carbon-cache (again, after Kill, on the same port and storage) and waits until
  // its line receiver listens. On failure returns false with carbon's output in `error`.
  bool Start(std::string* error, std::chrono::seconds timeout = std::chrono::seconds(30)) {
    Kill();
    std::filesystem::remove(dir_ + "/run/carbon-cache-a.pid");
    const std::string out = dir_ + "/carbon.out";
    std::filesystem::remove(out);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const std::string config = "--config=" + dir_ + "/conf/carbon.conf";
    const char* argv[] = {"carbon-cache", config.c_str(), "--nodaemon", "start", nullptr};
    const int rc = posix_spawnp(&pid_, "carbon-cache", &actions, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      pid_ = -1;
      *error = "cannot start carbon-cache: " + std::string(strerror(rc));
      return false;
    }
    const std::string ready = "CarbonReceiverFactory starting on " + std::to_string(line_port_);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (ReadFile(out).find(ready) != std::string::npos) return true;
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    *error = "carbon-cache did not start:\n" + ReadFile(out);
    Kill();
    return false;
  }

  // SIGKILL: the abrupt outage the tests want, and the quickest teardown.
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  bool running() {
    if (pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == pid_) pid_ = -1;
    return pid_ > 0;
  }
  int line_port() const { return line_port_; }
  std::string url() const { return "tcp://127.0.0.1:" + std::to_string(line_port_); }
  std::string whisper_dir() const { return dir_ + "/storage/whisper"; }

  // Where carbon stores `series` ("name;k=v;..."): it sorts the tags, hashes the result.
  std::string WhisperFile(const std::string& series) const {
    std::vector<std::string> parts;
    std::stringstream in(series);
    for (std::string part; std::getline(in, part, ';');) parts.push_back(part);
    std::sort(parts.begin() + 1, parts.end());
    std::string normal = parts[0];
    for (size_t i = 1; i < parts.size(); ++i) normal += ";" + parts[i];
    const std::string input = dir_ + "/series.txt";
    std::ofstream(input, std::ios::binary) << normal;
    const std::string hash = CommandOutput("sha256sum " + input).substr(0, 64);
    return whisper_dir() + "/_tagged/" + hash.substr(0, 3) + "/" + hash.substr(3, 3) + "/" + hash + ".wsp";
  }

  // The latest value stored for `series` at a unix time from `from` to `until`, polled
  // until carbon has written one (equal to `expected`, when given) or `timeout` passes;
  // nullopt if none was ever there.
  std::optional<double> WaitForValue(const std::string& series, int64_t from, int64_t until,
                                     std::optional<double> expected = std::nullopt,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(15)) const {
    const std::string file = WhisperFile(series);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::optional<double> value;
    do {
      if (std::filesystem::exists(file)) {
        value = Fetch(file, from, until);
        if (value && (!expected || *value == *expected)) return value;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    } while (std::chrono::steady_clock::now() < deadline);
    return value;
  }
  std::optional<double> WaitForValue(const std::string& series, int64_t time) const {
    return WaitForValue(series, time, time);
  }

 private:
  static std::optional<double> Fetch(const std::string& file, int64_t from, int64_t until) {
    // whisper-fetch starts at the first slot after --from.
    const std::string json = CommandOutput("whisper-fetch --json --from=" + std::to_string(from - 1) +
                                           " --until=" + std::to_string(until + 1) + " " + file + " 2>/dev/null");
    cJSON* root = cJSON_Parse(json.c_str());
    std::optional<double> value;
    const cJSON* start = cJSON_GetObjectItem(root, "start");
    const cJSON* step = cJSON_GetObjectItem(root, "step");
    const cJSON* values = cJSON_GetObjectItem(root, "values");
    if (cJSON_IsNumber(start) && cJSON_IsNumber(step) && step->valuedouble > 0 && cJSON_IsArray(values)) {
      int64_t time = static_cast<int64_t>(start->valuedouble);
      for (const cJSON* v = values->child; v != nullptr; v = v->next, time += static_cast<int64_t>(step->valuedouble)) {
        if (time >= from && time <= until && cJSON_IsNumber(v)) value = v->valuedouble;
      }
    }
    cJSON_Delete(root);
    return value;
  }

  std::string dir_;
  int line_port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace twins::test
