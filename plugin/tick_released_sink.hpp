// Keeps the time-series samples of group-committed writes until the tick that makes those
// writes durable, so Graphite never shows a value the database could still lose.
#pragma once

#include <exception>
#include <thread>
#include <utility>
#include <vector>

#include "tsdb/sample.hpp"

namespace twins {

class TickReleasedSink final : public SampleSink {
 public:
  // `group_committing`: true while broker-thread writes wait for the tick's Sync(). Built on
  // the broker thread.
  TickReleasedSink(SampleSink& next, const bool& group_committing)
      : next_(next), group_committing_(group_committing), broker_thread_(std::this_thread::get_id()) {}

  void Push(std::vector<Sample> samples) noexcept override {
    if (std::this_thread::get_id() != broker_thread_ || !group_committing_) return next_.Push(std::move(samples));
    try {
      for (Sample& sample : samples) held_.push_back(std::move(sample));
    } catch (const std::exception&) {
      // Out of memory: these samples are lost, as when the sender's queue overflows.
    }
  }

  // Broker thread, after the Sync() of the tick: its writes are durable.
  void Release() {
    if (held_.empty()) return;
    next_.Push(std::move(held_));
    held_.clear();
  }

  // Broker thread, after a failed Sync(): the writes these samples describe may be lost.
  void Discard() { held_.clear(); }

 private:
  SampleSink& next_;
  const bool& group_committing_;
  const std::thread::id broker_thread_;
  std::vector<Sample> held_;
};

}  // namespace twins
