// A point on its way to the time-series database, and the interface that takes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tsdb/points.hpp"

namespace twins {

struct Sample {
  std::string twin;
  std::string document;
  TsdbPoint point;
  int64_t time = 0;  // unix seconds
  uint64_t seq = 0;  // the change-log entry of the write it comes from (WriteEvent::change)
};

class SampleSink {
 public:
  virtual ~SampleSink() = default;
  // Takes the samples and returns at once: no network I/O happens on the caller's thread.
  // Thread-safe.
  virtual void Push(std::vector<Sample> samples) noexcept = 0;
};

}  // namespace twins
