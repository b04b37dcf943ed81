#include "plugin/broker_queue.hpp"

#include <utility>

namespace twins {

bool BrokerQueue::Push(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (tasks_.size() >= capacity_) {
      ++dropped_;
      return false;
    }
    tasks_.push_back(std::move(task));
  }
  Wake();
  return true;
}

void BrokerQueue::PushRequired(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  Wake();
}

void BrokerQueue::Wake() {
  if (wake_ && !wake_pending_.exchange(true)) wake_();
}

void BrokerQueue::Drain() {
  std::deque<std::function<void()>> batch;
  wake_pending_.store(false);  // before taking the tasks: one pushed after this wakes again
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(tasks_);
  }
  for (auto& task : batch) task();
}

}  // namespace twins
