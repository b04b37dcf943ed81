#include "tests/support/raw_mqtt.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/support/loopback.hpp"

namespace twins::test {
namespace {

std::string U16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)}; }
std::string Str(const std::string& s) { return U16(static_cast<uint16_t>(s.size())) + s; }

}  // namespace

std::string RawPacket::topic() const {
  if (body.size() < 2) return {};
  size_t len = (static_cast<uint8_t>(body[0]) << 8) | static_cast<uint8_t>(body[1]);
  return body.substr(2, len);
}

std::string RawPacket::payload() const {
  size_t len = (static_cast<uint8_t>(body[0]) << 8) | static_cast<uint8_t>(body[1]);
  size_t start = 2 + len + (((flags >> 1) & 3) > 0 ? 2 : 0);
  return start <= body.size() ? body.substr(start) : std::string();
}

RawMqtt::RawMqtt(int port) : fd_(ConnectLoopback(port)) {
  int one = 1;
  if (fd_ >= 0) setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

RawMqtt::~RawMqtt() { Drop(); }

int RawMqtt::local_port() const {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (fd_ < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

void RawMqtt::Drop() {
  if (fd_ < 0) return;
  // An abortive close (RST): the broker sees a lost connection, not a clean DISCONNECT.
  linger abort{1, 0};
  setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  close(fd_);
  fd_ = -1;
}

void RawMqtt::Send(uint8_t header, const std::string& body) {
  std::string packet(1, static_cast<char>(header));
  size_t length = body.size();
  do {
    uint8_t byte = length % 128;
    length /= 128;
    if (length > 0) byte |= 0x80;
    packet += static_cast<char>(byte);
  } while (length > 0);
  packet += body;
  for (size_t sent = 0; fd_ >= 0 && sent < packet.size();) {
    ssize_t n = send(fd_, packet.data() + sent, packet.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<size_t>(n);
  }
}

bool RawMqtt::Connect(const std::string& client_id, bool clean_session, const std::optional<Will>& will,
                      const std::string& username, const std::string& password) {
  SendConnect(client_id, clean_session, will, username, password);
  return AwaitConnack();
}

bool RawMqtt::AwaitConnack() {
  auto connack = Read();
  return connack && connack->type == 2 && connack->body.size() == 2 && connack->body[1] == 0;
}

void RawMqtt::SendConnect(const std::string& client_id, bool clean_session, const std::optional<Will>& will,
                          const std::string& username, const std::string& password) {
  uint8_t flags = clean_session ? 0x02 : 0;
  if (will) flags |= 0x04 | static_cast<uint8_t>(will->qos << 3) | (will->retain ? 0x20 : 0);
  if (!username.empty()) flags |= 0x80 | (password.empty() ? 0 : 0x40);
  std::string body = Str("MQTT") + '\x04' + static_cast<char>(flags) + U16(60) + Str(client_id);
  if (will) body += Str(will->topic) + Str(will->payload);
  if (!username.empty()) body += Str(username);
  if (!password.empty()) body += Str(password);
  Send(0x10, body);
}

void RawMqtt::Publish(const std::string& topic, const std::string& payload, int qos, uint16_t packet_id, bool dup,
                      bool retain) {
  uint8_t header = 0x30 | static_cast<uint8_t>(qos << 1) | (dup ? 0x08 : 0) | (retain ? 0x01 : 0);
  Send(header, Str(topic) + (qos > 0 ? U16(packet_id) : "") + payload);
}

void RawMqtt::Subscribe(const std::string& pattern, uint16_t packet_id) {
  Send(0x82, U16(packet_id) + Str(pattern) + '\x01');
}

void RawMqtt::PubRel(uint16_t packet_id) { Send(0x62, U16(packet_id)); }

void RawMqtt::PingReq() { Send(0xc0, ""); }

bool RawMqtt::ReadExact(char* out, size_t n, int timeout_ms) {
  for (size_t got = 0; got < n;) {
    pollfd p{fd_, POLLIN, 0};
    if (fd_ < 0 || poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t r = recv(fd_, out + got, n - got, 0);
    if (r <= 0) {
      closed_by_peer_ = true;
      return false;
    }
    got += static_cast<size_t>(r);
  }
  return true;
}

std::optional<RawPacket> RawMqtt::Read(int timeout_ms) {
  char header;
  if (!ReadExact(&header, 1, timeout_ms)) return std::nullopt;
  size_t length = 0;
  for (int shift = 0;; shift += 7) {
    char byte;
    if (shift > 21 || !ReadExact(&byte, 1, timeout_ms)) return std::nullopt;
    length |= static_cast<size_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) break;
  }
  RawPacket packet;
  packet.type = static_cast<uint8_t>(header) >> 4;
  packet.flags = header & 0x0f;
  packet.body.resize(length);
  if (length > 0 && !ReadExact(packet.body.data(), length, timeout_ms)) return std::nullopt;
  return packet;
}

std::optional<RawPacket> RawMqtt::ReadType(uint8_t type, int timeout_ms) {
  for (;;) {
    auto packet = Read(timeout_ms);
    if (!packet || packet->type == type) return packet;
  }
}

}  // namespace twins::test
