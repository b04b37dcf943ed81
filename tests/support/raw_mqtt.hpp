// MQTT 3.1.1 spoken byte by byte over a plain socket, for what client libraries will not do
// on request: re-send a QoS 2 PUBLISH with DUP and the same packet id, drop the TCP
// connection without DISCONNECT (so the broker publishes the Will), or send without reading.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace twins::test {

struct Will {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
};

struct RawPacket {
  uint8_t type = 0;  // the high nibble of the fixed header (3 = PUBLISH, 5 = PUBREC, ...)
  uint8_t flags = 0;
  std::string body;
  // For PUBLISH: the topic and payload (QoS > 0: the packet id is skipped).
  std::string topic() const;
  std::string payload() const;
};

class RawMqtt {
 public:
  explicit RawMqtt(int port);
  ~RawMqtt();
  RawMqtt(const RawMqtt&) = delete;
  RawMqtt& operator=(const RawMqtt&) = delete;

  // Sends CONNECT and waits for CONNACK; true when accepted.
  bool Connect(const std::string& client_id, bool clean_session, const std::optional<Will>& will = std::nullopt,
               const std::string& username = "", const std::string& password = "");
  // The two halves of Connect, for a CONNECT that must arrive while the broker is paused.
  void SendConnect(const std::string& client_id, bool clean_session, const std::optional<Will>& will = std::nullopt,
                   const std::string& username = "", const std::string& password = "");
  bool AwaitConnack();
  void Publish(const std::string& topic, const std::string& payload, int qos, uint16_t packet_id = 0, bool dup = false,
               bool retain = false);
  void Subscribe(const std::string& pattern, uint16_t packet_id);
  void PubRel(uint16_t packet_id);
  void PingReq();
  // Any packet, e.g. MQTT 5 ones: `header` is the fixed header's first byte, `body` follows
  // the remaining length.
  void SendPacket(uint8_t header, const std::string& body) { Send(header, body); }
  // The next packet, or nullopt after timeout_ms or when the connection closed.
  std::optional<RawPacket> Read(int timeout_ms = 2000);
  // The next packet of `type`, skipping others.
  std::optional<RawPacket> ReadType(uint8_t type, int timeout_ms = 2000);
  // Closes the socket without DISCONNECT: the broker sees the connection lost.
  void Drop();
  // The client side's port, as the broker logs it ("New connection from 127.0.0.1:<port>").
  int local_port() const;
  // True once a read found the connection closed by the broker (not merely nothing to read).
  bool closed_by_peer() const { return closed_by_peer_; }

 private:
  void Send(uint8_t header, const std::string& body);
  bool ReadExact(char* out, size_t n, int timeout_ms);
  int fd_ = -1;
  bool closed_by_peer_ = false;
};

}  // namespace twins::test
