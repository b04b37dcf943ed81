#include "plugin/broker_wake.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kConnectTimeoutMs = 1000;
constexpr int kConnackTimeoutMs = 2000;
constexpr auto kFirstRetry = std::chrono::milliseconds(100);
constexpr auto kLastRetry = std::chrono::seconds(10);

std::string LengthPrefixed(std::string_view text) {
  std::string out;
  out += static_cast<char>(text.size() >> 8);
  out += static_cast<char>(text.size() & 0xff);
  out += text;
  return out;
}

std::string Packet(uint8_t header, const std::string& body) {
  std::string out(1, static_cast<char>(header));
  size_t length = body.size();
  do {
    uint8_t byte = length % 128;
    length /= 128;
    if (length > 0) byte |= 0x80;
    out += static_cast<char>(byte);
  } while (length > 0);
  return out + body;
}

// MQTT 3.1.1 CONNECT: clean session, username and password, keepalive 0 (never pinged).
std::string ConnectPacket(const std::string& secret) {
  std::string body = LengthPrefixed("MQTT");
  body += '\x04';
  body += '\xc2';
  body += std::string(2, '\0');
  body += LengthPrefixed(kWakeClientId) + LengthPrefixed(kWakeClientId) + LengthPrefixed(secret);
  return Packet(0x10, body);
}

bool SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

bool ReadExact(int fd, char* out, size_t n, int timeout_ms) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  size_t got = 0;
  while (got < n) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    const ssize_t r = recv(fd, out + got, n - got, 0);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// A connected stream socket to `target`, or -1 and why.
int OpenSocket(const WakeTarget& target, std::string* why) {
  if (!target.unix_path.empty()) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (target.unix_path.size() >= sizeof addr.sun_path) {
      *why = "the socket path is too long";
      return -1;
    }
    std::memcpy(addr.sun_path, target.unix_path.c_str(), target.unix_path.size() + 1);
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    *why = std::strerror(errno);
    if (fd >= 0) close(fd);
    return -1;
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const int rc = getaddrinfo(target.host.c_str(), std::to_string(target.port).c_str(), &hints, &found);
  if (rc != 0) {
    *why = gai_strerror(rc);
    return -1;
  }
  *why = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t size = sizeof error;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 &&
        (errno != EINPROGRESS || poll(&p, 1, kConnectTimeoutMs) != 1 ||
         getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 || error != 0)) {
      *why = error != 0 ? std::strerror(error) : errno == EINPROGRESS ? "timed out" : std::strerror(errno);
      close(fd);
      fd = -1;
      continue;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    // A wake is one small packet: it must not wait for Nagle's algorithm.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  freeaddrinfo(found);
  return fd;
}

std::string RandomSecret() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error("getrandom failed");
    got += static_cast<size_t>(n);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string secret;
  for (unsigned char b : bytes) {
    secret += kHex[b >> 4];
    secret += kHex[b & 15];
  }
  return secret;
}

bool SameSecret(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

std::string WakeTarget::Describe() const {
  if (!unix_path.empty()) return unix_path;
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Status ParseWakeAddress(const std::string& value, WakeTarget* target, bool* off) {
  *off = value == "off";
  if (*off) return Status::Ok();
  const auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("wake_address", "plugin_opt_wake_address: '" + value + "' " + why +
                                                       " (host:port, [ipv6]:port, a Unix socket path, or off)");
  };
  if (!value.empty() && value[0] == '/') {
    *target = {"", 0, value};
    return Status::Ok();
  }
  const size_t colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("has no host:port");
  std::string host = value.substr(0, colon);
  const std::string port = value.substr(colon + 1);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || (host.find(':') != std::string::npos && value[0] != '[')) return bad("has no host:port");
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(port) < 1 || std::stoi(port) > 65535) {
    return bad("has no port from 1 to 65535");
  }
  *target = {host, std::stoi(port), ""};
  return Status::Ok();
}

Result<WakeTarget> ChooseWakeTarget(const BrokerSetup& setup) {
  if (setup.per_listener_settings) {
    return Status::InvalidArgument("listener",
                                   "per_listener_settings true (the plugin would authenticate on one "
                                   "listener only)");
  }
  std::string skipped;
  for (const ListenerConfig& l : setup.listeners) {
    const std::string why = l.tls ? "TLS" : l.websockets ? "websockets" : l.unusable;
    if (!why.empty()) {
      skipped += (skipped.empty() ? "" : "; ") + l.line + ": " + why;
      continue;
    }
    if (!l.unix_path.empty()) return WakeTarget{"", 0, l.unix_path};
    std::string host = l.address;
    if (host.empty() || host == "0.0.0.0" || host == "::") {
      host = l.socket_domain == "ipv6" || host == "::" ? "::1" : "127.0.0.1";
    }
    return WakeTarget{host, l.port, ""};
  }
  return Status::InvalidArgument("listener", "no plain MQTT listener (" + skipped + ")");
}

OthersAuth WakeAuthFor(const BrokerSetup& setup, bool broker_has_ignore) {
  if (broker_has_ignore) return OthersAuth::kIgnore;
  if (setup.password_file || setup.other_plugins) return OthersAuth::kDefer;
  return setup.allow_anonymous ? OthersAuth::kAllow : OthersAuth::kDefer;
}

BrokerWake::BrokerWake(WakeTarget target, LogFn log, std::function<void(bool)> connected)
    : target_(std::move(target)), log_(std::move(log)), connected_(std::move(connected)), secret_(RandomSecret()) {
  event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (event_fd_ < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
}

BrokerWake::~BrokerWake() {
  Stop();
  close(event_fd_);
}

void BrokerWake::Stop() {
  stopping_ = true;
  Request();
  if (thread_.joinable()) thread_.join();
}

void BrokerWake::Start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
}

void BrokerWake::Request() {
  const uint64_t one = 1;
  // Non-blocking: a full counter (2^64 - 2 requests not yet read) already means a wake.
  [[maybe_unused]] const ssize_t n = write(event_fd_, &one, sizeof one);
}

WakeCredentials BrokerWake::Check(const char* client_id, const char* username, const char* password) const {
  const bool id = client_id != nullptr && kWakeClientId == client_id;
  const bool user = username != nullptr && kWakeClientId == username;
  if (!id && !user) return WakeCredentials::kOther;
  const bool secret = password != nullptr && SameSecret(password, secret_);
  return id && user && secret ? WakeCredentials::kWake : WakeCredentials::kImpostor;
}

int BrokerWake::Connect(std::string* why) const {
  const int fd = OpenSocket(target_, why);
  if (fd < 0) return -1;
  char connack[4];
  if (!SendAll(fd, ConnectPacket(secret_)) || !ReadExact(fd, connack, sizeof connack, kConnackTimeoutMs)) {
    *why = "no CONNACK";
  } else if (connack[0] != 0x20 || connack[1] != 2 || connack[3] != 0) {
    *why = "the broker refused it (CONNACK return code " + std::to_string(static_cast<uint8_t>(connack[3])) +
           "; a plugin loaded before mosquitto_twins may have refused its password)";
  } else {
    return fd;
  }
  close(fd);
  return -1;
}

void BrokerWake::Run() {
  const std::string publish = Packet(0x30, LengthPrefixed(kWakeTopic));
  const std::string where = target_.Describe();
  int fd = -1;
  bool ever_connected = false, down = false;
  std::string dropped;  // why the last connection went; logged only if it does not come back at once
  auto retry_after = kFirstRetry;
  Clock::time_point next_attempt = Clock::now();
  const auto drop = [&](const std::string& why) {
    close(fd);
    fd = -1;
    connected_(false);
    dropped = why;
    next_attempt = Clock::now() + retry_after;
  };
  while (!stopping_) {
    if (fd < 0 && Clock::now() >= next_attempt) {
      std::string why;
      fd = Connect(&why);
      if (fd < 0) {
        next_attempt = Clock::now() + retry_after;
        retry_after = std::min<std::chrono::milliseconds>(retry_after * 2, kLastRetry);
        if (!down && !stopping_) {  // one line per outage (a broker that stops closes it first)
          down = true;
          log_(LogLevel::kWarning, "broker wake: " + (dropped.empty() ? "" : dropped + ", ") +
                                       "cannot connect: " + why + " (" + where +
                                       "); work from other threads waits for the broker's tick (up to 100 ms) "
                                       "until it is back (retrying)");
        }
      } else {
        connected_(true);
        retry_after = kFirstRetry;
        if (!ever_connected || down || !dropped.empty()) {
          log_(LogLevel::kInfo, std::string(ever_connected ? "broker wake connected again" : "broker wake connected") +
                                    " to " + where + " as " + std::string(kWakeClientId) +
                                    (down || dropped.empty() ? "" : " (after: " + dropped + ")"));
        }
        ever_connected = true;
        down = false;
        dropped.clear();
      }
    }
    pollfd fds[2] = {{event_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_attempt - Clock::now()).count();
    const int timeout = fd >= 0 ? -1 : static_cast<int>(std::max<int64_t>(wait, 0)) + 1;
    if (poll(fds, fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR && fd >= 0) drop(std::strerror(errno));
    if ((fds[0].revents & POLLIN) != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = read(event_fd_, &count, sizeof count);
      if (fd >= 0 && !stopping_ && !SendAll(fd, publish)) drop("connection lost");
    }
    if (fd >= 0 && fds[1].revents != 0) {
      char discard[256];
      if (recv(fd, discard, sizeof discard, MSG_DONTWAIT) <= 0) drop("connection closed by the broker");
    }
  }
  if (fd >= 0) close(fd);
}

}  // namespace twins
