// A real MQTT client (libmosquitto, TCP_NODELAY on) with blocking helpers for tests.
#pragma once

#include <mosquitto.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>

namespace twins::test {

struct Message {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
  std::string correlation_data;  // MQTT 5 only
};

class MqttClient {
 public:
  // protocol: MQTT_PROTOCOL_V311 or MQTT_PROTOCOL_V5.
  MqttClient(const std::string& client_id, int port, int protocol = MQTT_PROTOCOL_V311);
  ~MqttClient();
  MqttClient(const MqttClient&) = delete;
  MqttClient& operator=(const MqttClient&) = delete;

  bool connected() const { return connected_; }
  bool Subscribe(const std::string& pattern, int qos = 1);
  // Publishes and, for QoS > 0, waits for the broker's acknowledgement.
  bool Publish(const std::string& topic, const std::string& payload, int qos = 1, bool retain = false,
               const std::string& correlation_data = "", const std::string& response_topic = "");
  // The next message received, or nullopt after timeout_ms.
  std::optional<Message> Next(int timeout_ms = 2000);
  // Publishes on `topic` and returns the next message received.
  std::optional<Message> Request(const std::string& topic, const std::string& payload, int qos = 1);
  // The PUBACK reason code of the last QoS 1 publish (MQTT 5).
  int last_puback_reason() const { return last_puback_reason_; }

 private:
  static void OnConnect(mosquitto*, void* self, int rc, int flags, const mosquitto_property*);
  static void OnDisconnect(mosquitto*, void* self, int rc, const mosquitto_property*);
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* msg, const mosquitto_property* props);
  static void OnPublish(mosquitto*, void* self, int mid, int reason, const mosquitto_property*);
  static void OnSubscribe(mosquitto*, void* self, int mid, int count, const int* granted, const mosquitto_property*);
  bool WaitFor(int mid, int timeout_ms);

  mosquitto* mosq_;
  int protocol_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Message> messages_;
  std::deque<int> acked_;
  bool connected_ = false;
  int last_puback_reason_ = -1;
};

}  // namespace twins::test
