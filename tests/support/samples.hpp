// Time-series samples for tests of the Graphite encoding and sender.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "tsdb/sample.hpp"

namespace twins::test {

inline Sample MakeSample(std::string twin, std::string document, std::string json_path, double value, int64_t time,
                         std::map<std::string, std::string> tags = {}) {
  Sample sample;
  sample.twin = std::move(twin);
  sample.document = std::move(document);
  sample.point.json_path = std::move(json_path);
  sample.point.value = value;
  sample.point.tags = std::move(tags);
  sample.time = time;
  return sample;
}

}  // namespace twins::test
