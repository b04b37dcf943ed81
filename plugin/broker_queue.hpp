// Work for the broker thread. Mosquitto's functions (publish, log) are not thread-safe, so
// CivetWeb and sender threads push closures here and the plugin runs them on the broker thread:
// at once when the broker wake (broker_wake.hpp) asks it to, and in any case on MOSQ_EVT_TICK.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <utility>

namespace twins {

class BrokerQueue {
 public:
  explicit BrokerQueue(size_t capacity) : capacity_(capacity) {}

  // Before the queue is shared: called by Push when the queue was drained since the last
  // call (at most one wake in flight, however many tasks come meanwhile). Must not block.
  void SetWaker(std::function<void()> wake) { wake_ = std::move(wake); }

  // Any thread. Returns false, and counts the drop, when the queue is full (the broker
  // thread is not draining it).
  bool Push(std::function<void()> task);
  // Any thread. Queued whatever the queue holds: for tasks that must run (the reply of a
  // request the broker thread handed on, which also ends its bookkeeping) and whose number is
  // bounded where they come from (the batch thread's own bounded queue).
  void PushRequired(std::function<void()> task);

  // Broker thread only: runs every queued task, in order.
  void Drain();

  // Tasks refused because the queue was full (twins_broker_queue_dropped_total).
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  void Wake();

  const size_t capacity_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
  std::atomic<uint64_t> dropped_{0};
  std::function<void()> wake_;
  std::atomic<bool> wake_pending_{false};  // set by Push when it wakes, cleared by Drain
};

}  // namespace twins
