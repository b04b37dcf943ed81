#include "tests/support/broker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

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

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

bool WaitForPort(int port, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool up = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    if (up) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

Broker::Broker(std::string plugin_options, std::string global_options)
    : plugin_options_(std::move(plugin_options)), global_options_(std::move(global_options)), port_(FreePort()) {}

Broker::~Broker() { Stop(); }

bool Broker::Start() {
  std::ofstream conf(dir_.sub("mosquitto.conf"));
  conf << global_options_ << "listener " << port_ << " 127.0.0.1\n"
       << "allow_anonymous true\n"
       << "user root\n"
       << "set_tcp_nodelay true\n"
       << "log_type all\n";
  if (load_plugin_) {
    conf << "plugin " << TWINS_PLUGIN_PATH << "\n"
         << "plugin_opt_db_path " << db_path() << "\n"
         << "plugin_opt_rest_listen off\n"
         << plugin_options_;
  }
  conf.close();
  pid_ = fork();
  if (pid_ == 0) {
    int log = open(dir_.sub("mosquitto.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
#ifdef TWINS_BROKER_PRELOAD
    // The sanitized plugin needs the sanitizer runtimes the stock broker binary lacks.
    setenv("LD_PRELOAD", TWINS_BROKER_PRELOAD, 1);
#endif
    const std::string binary = MosquittoBinary();
    execl(binary.c_str(), "mosquitto", "-c", dir_.sub("mosquitto.conf").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (WaitForPort(port_, 50)) return true;
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
  }
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
