// The reply to one in-band request: to the requesting client only, at the request's QoS,
// never retained, echoing its MQTT 5 correlation data. Header-only so that the benchmark's
// reference plugin (bench/) pays exactly the broker cost mosquitto_twins pays.
#pragma once

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mqtt_protocol.h>

#include <cstdlib>

namespace twins {

// Broker thread only. Returns the broker's status (MOSQ_ERR_SUCCESS when queued).
inline int PublishReply(const mosquitto_evt_message& request, const char* client_id, const char* topic,
                        const void* payload, int payload_len) {
  mosquitto_property* properties = nullptr;
  void* correlation = nullptr;
  uint16_t correlation_len = 0;
  if (mosquitto_property_read_binary(request.properties, MQTT_PROP_CORRELATION_DATA, &correlation, &correlation_len,
                                     false) != nullptr) {
    mosquitto_property_add_binary(&properties, MQTT_PROP_CORRELATION_DATA, correlation, correlation_len);
    std::free(correlation);
  }
  int rc = mosquitto_broker_publish_copy(client_id, topic, payload_len, payload, request.qos, false, properties);
  if (rc != MOSQ_ERR_SUCCESS) mosquitto_property_free_all(&properties);  // owned by the broker only on success
  return rc;
}

}  // namespace twins
