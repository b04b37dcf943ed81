// The registry as retained $SYS topics, for the exporters and dashboards that already read
// Mosquitto's own $SYS/broker/... tree.
//
//   twins_requests_total{api="mqtt",operation="get",result="ok"}  ->  $SYS/broker/twins/requests/mqtt/get/ok
//   twins_store_bytes                                              ->  $SYS/broker/twins/store_bytes
//   twins_request_duration_seconds{api="rest",operation="put"}    ->  .../request_duration_seconds/rest/put/count
//                                                                       and .../sum
//
// The twins_ prefix goes, and a counter's _total suffix; label values follow in declared
// order. Payloads are plain numbers, as in the broker's own $SYS topics.
//
// Thread-safety: one SysTopics per publisher thread (the broker's).
#pragma once

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics/registry.hpp"

namespace twins::metrics {

std::string SysTopic(const Sample& sample);

class SysTopics {
 public:
  // The (topic, payload) pairs whose payload changed since the last call: every one the
  // first time.
  std::vector<std::pair<std::string, std::string>> Changed(const Registry& registry);

 private:
  std::unordered_map<std::string, std::string> last_;
};

}  // namespace twins::metrics
