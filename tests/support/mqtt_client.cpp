#include "tests/support/mqtt_client.hpp"

#include <mqtt_protocol.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

namespace twins::test {
namespace {

struct LibraryInit {
  LibraryInit() { mosquitto_lib_init(); }
};

}  // namespace

MqttClient::MqttClient(const std::string& client_id, int port, int protocol) : protocol_(protocol) {
  static LibraryInit init;
  mosq_ = mosquitto_new(client_id.c_str(), true, this);
  mosquitto_int_option(mosq_, MOSQ_OPT_PROTOCOL_VERSION, protocol);
  mosquitto_int_option(mosq_, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_v5_callback_set(mosq_, OnConnect);
  mosquitto_disconnect_v5_callback_set(mosq_, OnDisconnect);
  mosquitto_message_v5_callback_set(mosq_, OnMessage);
  mosquitto_publish_v5_callback_set(mosq_, OnPublish);
  mosquitto_subscribe_v5_callback_set(mosq_, OnSubscribe);
  if (mosquitto_connect(mosq_, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) return;
  mosquitto_loop_start(mosq_);
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait_for(lock, std::chrono::seconds(5), [this] { return connected_; });
}

MqttClient::~MqttClient() {
  mosquitto_disconnect(mosq_);
  mosquitto_loop_stop(mosq_, true);
  mosquitto_destroy(mosq_);
}

void MqttClient::OnConnect(mosquitto*, void* self, int rc, int, const mosquitto_property*) {
  auto* client = static_cast<MqttClient*>(self);
  std::lock_guard<std::mutex> lock(client->mutex_);
  client->connected_ = rc == 0;
  client->changed_.notify_all();
}

void MqttClient::OnDisconnect(mosquitto*, void* self, int, const mosquitto_property*) {
  auto* client = static_cast<MqttClient*>(self);
  std::lock_guard<std::mutex> lock(client->mutex_);
  client->connected_ = false;
  client->changed_.notify_all();
}

void MqttClient::OnMessage(mosquitto*, void* self, const mosquitto_message* msg, const mosquitto_property* props) {
  auto* client = static_cast<MqttClient*>(self);
  Message m{
      msg->topic, std::string(static_cast<const char*>(msg->payload), msg->payloadlen), msg->qos, msg->retain, {}};
  void* correlation = nullptr;
  uint16_t len = 0;
  if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &correlation, &len, false) != nullptr) {
    m.correlation_data.assign(static_cast<const char*>(correlation), len);
    free(correlation);
  }
  std::lock_guard<std::mutex> lock(client->mutex_);
  client->messages_.push_back(std::move(m));
  client->changed_.notify_all();
}

void MqttClient::OnPublish(mosquitto*, void* self, int mid, int reason, const mosquitto_property*) {
  auto* client = static_cast<MqttClient*>(self);
  std::lock_guard<std::mutex> lock(client->mutex_);
  client->acked_.push_back(mid);
  client->last_puback_reason_ = reason;
  client->changed_.notify_all();
}

void MqttClient::OnSubscribe(mosquitto*, void* self, int mid, int, const int*, const mosquitto_property*) {
  auto* client = static_cast<MqttClient*>(self);
  std::lock_guard<std::mutex> lock(client->mutex_);
  client->acked_.push_back(mid);
  client->changed_.notify_all();
}

bool MqttClient::WaitFor(int mid, int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  return changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return std::find(acked_.begin(), acked_.end(), mid) != acked_.end(); });
}

bool MqttClient::Subscribe(const std::string& pattern, int qos) {
  int mid = 0;
  if (mosquitto_subscribe(mosq_, &mid, pattern.c_str(), qos) != MOSQ_ERR_SUCCESS) return false;
  return WaitFor(mid, 2000);
}

bool MqttClient::Publish(const std::string& topic, const std::string& payload, int qos, bool retain,
                         const std::string& correlation_data, const std::string& response_topic) {
  mosquitto_property* props = nullptr;
  if (!correlation_data.empty()) {
    mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, correlation_data.data(),
                                  static_cast<uint16_t>(correlation_data.size()));
  }
  if (!response_topic.empty()) mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, response_topic.c_str());
  int mid = 0;
  int rc = mosquitto_publish_v5(mosq_, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                                retain, props);
  mosquitto_property_free_all(&props);
  if (rc != MOSQ_ERR_SUCCESS) return false;
  return qos == 0 || WaitFor(mid, 2000);
}

std::optional<Message> MqttClient::Next(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !messages_.empty(); })) {
    return std::nullopt;
  }
  Message m = std::move(messages_.front());
  messages_.pop_front();
  return m;
}

std::optional<Message> MqttClient::Request(const std::string& topic, const std::string& payload, int qos) {
  if (!Publish(topic, payload, qos)) return std::nullopt;
  return Next();
}

}  // namespace twins::test
