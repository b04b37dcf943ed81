// Work for the broker thread. Mosquitto's functions (publish, log) are not thread-safe, so
// CivetWeb and sender threads push closures here and the plugin runs them on MOSQ_EVT_TICK.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

namespace twins {

class BrokerQueue {
 public:
  explicit BrokerQueue(size_t capacity) : capacity_(capacity) {}

  // Any thread. Returns false, and drops the task, when the queue is full (the broker
  // thread is not draining it).
  bool Push(std::function<void()> task);

  // Broker thread only: runs every queued task, in order.
  void Drain();

 private:
  const size_t capacity_;
  std::mutex mutex_;
  std::deque<std::function<void()>> tasks_;
};

}  // namespace twins
