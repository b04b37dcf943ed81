#include "tests/support/broker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace twins::test {

std::string MosquittoBinary() {
  const char* binary = std::getenv("TWINS_MOSQUITTO");
  return binary != nullptr && *binary != '\0' ? binary : "/usr/sbin/mosquitto";
}

std::string BrokerPlugin(const std::string& file) {
  const char* dir = std::getenv("TWINS_MOSQUITTO_PLUGINS");
  return std::string(dir != nullptr && *dir != '\0' ? dir : "/usr/lib/x86_64-linux-gnu") + "/" + file;
}

std::string BrokerVersion(const std::string& log) {
  const std::string marker = "mosquitto version ";
  size_t at = log.find(marker);
  if (at == std::string::npos) return {};
  at += marker.size();
  return log.substr(at, log.find(' ', at) - at);
}

bool VersionAtLeast(const std::string& version, int major, int minor, int patch) {
  int v[3] = {0, 0, 0};
  std::sscanf(version.c_str(), "%d.%d.%d", &v[0], &v[1], &v[2]);
  const int want[3] = {major, minor, patch};
  for (int i = 0; i < 3; ++i) {
    if (v[i] != want[i]) return v[i] > want[i];
  }
  return true;
}

Broker::Broker(std::string plugin_options, std::string global_options)
    : plugin_options_(std::move(plugin_options)), global_options_(std::move(global_options)), port_(FreePort()) {}

Broker::~Broker() { Stop(); }

bool Broker::Start() {
  std::string config = "log_type all\n";
  if (load_plugin_) {
    config += std::string("plugin ") + TWINS_PLUGIN_PATH + "\nplugin_opt_db_path " + db_path() +
              "\nplugin_opt_rest_listen off\n" + plugin_options_;
  }
  const std::string port = std::to_string(port_);
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return false;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(ready[1], STDOUT_FILENO);
#ifdef TWINS_BROKER_PRELOAD
    // The sanitized plugin needs the sanitizer runtimes the stock broker binary lacks.
    setenv("TWINS_BROKER_PRELOAD", TWINS_BROKER_PRELOAD, 1);
#endif
    execl(TWINS_START_BROKER, TWINS_START_BROKER, "--port", port.c_str(), dir_.path().c_str(), config.c_str(),
          global_options_.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(ready[1]);
  // The launcher becomes the broker; a line comes once it listens, end of file if it never does.
  std::string line;
  char buffer[256];
  for (ssize_t n; (n = read(ready[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) line.append(buffer, static_cast<size_t>(n));
    if (n < 0 && errno != EINTR) break;
  }
  close(ready[0]);
  if (line.rfind("port=", 0) == 0) return true;
  Kill();
  return false;
}

void Broker::Stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, &exit_status_, 0);
  pid_ = -1;
}

bool Broker::exited_cleanly() const {
  return WIFEXITED(exit_status_) && WEXITSTATUS(exit_status_) == 0 && log().find("Sanitizer") == std::string::npos;
}

bool Broker::WaitForLog(const std::string& text, int timeout_ms) const {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (log().find(text) == std::string::npos) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

void Broker::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void Broker::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

long Broker::RssKib() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

void Broker::Reload() {
  if (pid_ > 0) kill(pid_, SIGHUP);
}

void Broker::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string Broker::log() const {
  std::ifstream in(dir_.sub("mosquitto.log"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace twins::test
