// twins_reference_plugin: the zero-work ceiling for the twins benchmarks.
//
// It does the broker-facing half of mosquitto_twins and nothing else: every request on
// $SCW/twins/<id>/<doc>/<method> is answered, to the sender only and at the request's QoS,
// on <topic>/response/success with one fixed ~1 KiB document, and is then dropped with
// ACL_DENIED. No parsing of the payload, no storage. What this broker achieves is what the
// broker, the loopback network and the load generator allow on this machine; mosquitto_twins
// is measured as a fraction of it.
//
//   plugin /path/to/twins_reference_plugin.so

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "plugin/publish_reply.hpp"

namespace {

constexpr std::string_view kPrefix = "$SCW/twins/";

struct Reference {
  mosquitto_plugin_id_t* id = nullptr;
  std::string document;
};

// The same shape and size as the documents twins_load puts.
std::string FixedDocument() {
  std::string data = "{\"device\":{\"model\":\"thermo-3000\",\"firmware\":\"4.2.0\"},";
  for (int i = 0; i < 12; ++i) {
    data += "\"sensor" + std::to_string(i) + "\":{\"value\":" + std::to_string(20 + i % 7) +
            ".5,\"unit\":\"celsius\",\"ok\":true,\"history\":[1,2,3]},";
  }
  data += "\"tags\":[\"a\",\"b\",\"c\"]}";
  return "{\"version\":1,\"data\":" + data + "}";
}

// True for exactly three levels after the prefix, as mosquitto_twins answers.
bool IsMethodTopic(std::string_view topic) {
  std::string_view rest = topic.substr(kPrefix.size());
  int slashes = 0;
  for (char c : rest) slashes += c == '/';
  return slashes == 2;
}

int Reply(const Reference& reference, const mosquitto_evt_message* msg) {
  std::string_view topic(msg->topic);
  if (topic.compare(0, kPrefix.size(), kPrefix) != 0) return MOSQ_ERR_SUCCESS;
  if (!IsMethodTopic(topic)) return MOSQ_ERR_ACL_DENIED;
  const char* client_id = mosquitto_client_id(msg->client);
  if (client_id == nullptr) return MOSQ_ERR_ACL_DENIED;

  // The same reply path as mosquitto_twins, so the two differ by the engine alone.
  const std::string reply_topic = std::string(topic) + "/response/success";
  twins::PublishReply(client_id, reply_topic, reference.document, msg->qos, twins::CorrelationData(*msg));
  return MOSQ_ERR_ACL_DENIED;
}

int OnMessage(int, void* event_data, void* userdata) {
  try {
    return Reply(*static_cast<Reference*>(userdata), static_cast<mosquitto_evt_message*>(event_data));
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins_reference: reply failed");
    return MOSQ_ERR_ACL_DENIED;
  }
}

}  // namespace

extern "C" {

int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata, mosquitto_opt*, int) {
  try {
    auto* reference = new Reference{identifier, FixedDocument()};
    int rc = mosquitto_callback_register(identifier, MOSQ_EVT_MESSAGE, OnMessage, nullptr, reference);
    if (rc != MOSQ_ERR_SUCCESS) {
      delete reference;
      return rc;
    }
    *userdata = reference;
    return MOSQ_ERR_SUCCESS;
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins_reference: initialisation failed");
    return MOSQ_ERR_UNKNOWN;
  }
}

int mosquitto_plugin_cleanup(void* userdata, mosquitto_opt*, int) {
  auto* reference = static_cast<Reference*>(userdata);
  if (reference == nullptr) return MOSQ_ERR_SUCCESS;
  mosquitto_callback_unregister(reference->id, MOSQ_EVT_MESSAGE, OnMessage, nullptr);
  delete reference;
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
