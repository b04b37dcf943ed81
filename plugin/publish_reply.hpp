// The reply to one in-band request: to the requesting client only, at the request's QoS,
// never retained, echoing its MQTT 5 correlation data. Header-only so that the benchmark's
// reference plugin (bench/) pays exactly the broker cost mosquitto_twins pays.
#pragma once

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mqtt_protocol.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace twins {

// The request's MQTT 5 correlation data, copied: the reply may leave after the request is gone.
inline std::optional<std::string> CorrelationData(const mosquitto_evt_message& request) {
  void* data = nullptr;
  uint16_t length = 0;
  if (mosquitto_property_read_binary(request.properties, MQTT_PROP_CORRELATION_DATA, &data, &length, false) ==
      nullptr) {
    return std::nullopt;
  }
  std::string copy(static_cast<const char*>(data), length);
  std::free(data);
  return copy;
}

// Broker thread only. Returns the broker's status (MOSQ_ERR_SUCCESS when queued).
inline int PublishReply(const char* client_id, const std::string& topic, const std::string& payload, int qos,
                        const std::optional<std::string>& correlation) {
  mosquitto_property* properties = nullptr;
  if (correlation) {
    mosquitto_property_add_binary(&properties, MQTT_PROP_CORRELATION_DATA, correlation->data(),
                                  static_cast<uint16_t>(correlation->size()));
  }
  int rc = mosquitto_broker_publish_copy(client_id, topic.c_str(), static_cast<int>(payload.size()), payload.data(),
                                         qos, false, properties);
  if (rc != MOSQ_ERR_SUCCESS) mosquitto_property_free_all(&properties);  // owned by the broker only on success
  return rc;
}

}  // namespace twins
