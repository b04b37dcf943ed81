#include "plugin/broker_queue.hpp"

#include <utility>

namespace twins {

bool BrokerQueue::Push(std::function<void()> task) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tasks_.size() >= capacity_) return false;
  tasks_.push_back(std::move(task));
  return true;
}

void BrokerQueue::Drain() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(tasks_);
  }
  for (auto& task : batch) task();
}

}  // namespace twins
