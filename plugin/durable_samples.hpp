// Keeps time-series samples until the write they come from is durable, so Graphite never
// shows a value the database could still lose: a write made durable before it returned
// (REST) passes at once, one of a group commit (the broker's loop pass) waits for its Sync.
// Installed as a write observer beside the time-series observer, for OnDurable and OnLost.
#pragma once

#include <algorithm>
#include <exception>
#include <iterator>
#include <mutex>
#include <utility>
#include <vector>

#include "engine/engine.hpp"
#include "tsdb/sample.hpp"

namespace twins {

class DurableSamples final : public SampleSink, public WriteObserver {
 public:
  explicit DurableSamples(SampleSink& next) : next_(next) {}

  void Push(std::vector<Sample> samples) noexcept override {
    std::unique_lock<std::mutex> lock(mutex_);
    try {
      std::vector<Sample> now;
      for (Sample& sample : samples) (sample.seq <= durable_ ? now : held_).push_back(std::move(sample));
      lock.unlock();
      if (!now.empty()) next_.Push(std::move(now));
    } catch (const std::exception&) {
      // Out of memory: these samples are lost, as when the sender's queue overflows.
    }
  }

  void OnWrite(const WriteEvent&) noexcept override {}

  void OnDurable(uint64_t seq) noexcept override try {
    std::vector<Sample> released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      durable_ = std::max(durable_, seq);
      auto durable = std::partition(held_.begin(), held_.end(), [&](const Sample& s) { return s.seq <= durable_; });
      released.assign(std::make_move_iterator(held_.begin()), std::make_move_iterator(durable));
      held_.erase(held_.begin(), durable);
    }
    if (!released.empty()) next_.Push(std::move(released));
  } catch (const std::exception&) {
    // Out of memory: the samples held stay held until the next Sync.
  }

  // The writes these samples describe may be lost: so are the samples.
  void OnLost(uint64_t seq) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    held_.erase(std::remove_if(held_.begin(), held_.end(), [&](const Sample& s) { return s.seq <= seq; }), held_.end());
  }

 private:
  SampleSink& next_;
  std::mutex mutex_;
  uint64_t durable_ = 0;  // guarded by mutex_, like held_
  std::vector<Sample> held_;
};

}  // namespace twins
