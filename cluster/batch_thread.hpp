// The batch thread of a broker whose twins live in a store shared with other brokers
// (PostgreSQL): every engine call runs here, in batches, each batch one transaction of the
// store (store/postgres_shared_store.hpp, engine/batch_runner.hpp).
//
//   take the calls queued (up to kMaxBatch) -> Begin: the store's lock when one may write, the
//   changes other brokers made since the last batch, what the calls will read -> the engine
//   hears of those changes (CatchUp) -> the calls run, one after the other -> Sync commits ->
//   each call's `settled` runs -> the engine's observers hear of the durability.
//
// Between batches it waits for calls, for the store's notifications (another broker wrote,
// or changed watches), and at most kPoll: then a batch with no call catches up, so that
// pushes and event streams hear of other brokers' changes even without notifications.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/log.hpp"
#include "engine/batch_runner.hpp"
#include "engine/engine.hpp"
#include "store/postgres_shared_store.hpp"

namespace twins {

class BatchThread final : public BatchRunner {
 public:
  static constexpr size_t kMaxBatch = 1000;
  static constexpr std::chrono::milliseconds kPoll{1000};

  // `store` is the engine's (the engine owns it); both outlive this thread.
  BatchThread(Engine& engine, SharedPostgresStore& store);
  ~BatchThread() override;  // stops: calls still queued fail
  BatchThread(const BatchThread&) = delete;
  BatchThread& operator=(const BatchThread&) = delete;

  // Starts the thread (after the engine's observers are added).
  void Start();

  bool OnBatchThread() const override { return std::this_thread::get_id() == thread_.get_id(); }
  Status RunAndWait(const BatchHint& hint, const std::function<void()>& work) override;
  void Submit(BatchHint hint, std::function<void()> work, std::function<void(const Status&)> settled) override;

  // For monitoring: calls queued and not yet taken by a batch; batches run, and calls they ran;
  // batches that did not commit.
  size_t queued() const;
  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  uint64_t calls() const { return calls_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

  struct Call {
    BatchHint hint;
    std::function<void()> work;
    std::function<void(const Status&)> settled;
  };

 private:
  void Loop();
  void RunBatch(std::vector<Call>& calls);
  void Wake();

  Engine& engine_;
  SharedPostgresStore& store_;
  const int wake_fd_;  // an eventfd: a call was queued, or the thread must stop
  mutable std::mutex mutex_;
  std::deque<Call> queue_;  // guarded by mutex_
  bool stopping_ = false;   // guarded by mutex_
  // The batch thread's: twins whose watches another broker changed, to read at the next batch.
  std::set<std::string> watch_twins_;
  std::atomic<uint64_t> batches_{0}, calls_{0}, failed_{0};
  std::thread thread_;
};

}  // namespace twins
