// The batch thread of a broker whose twins live in a store shared with other brokers
// (PostgreSQL): every engine call runs here, in batches, each batch one transaction of the
// store (store/postgres_shared_store.hpp, engine/batch_runner.hpp).
//
//   take the calls queued (up to kMaxBatch) -> Begin: the store's lock when one may write, the
//   changes other brokers made since the last batch, what the calls will read -> the engine
//   hears of those changes (CatchUp) -> the calls run, one after the other -> with the lock,
//   the calls queued meanwhile join (Join) -> Sync commits -> each call's `settled` runs ->
//   the engine's observers hear of the durability.
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
  // A batch takes calls until they may write this much (at least one call): its statements
  // must fit the store's deadline.
  static constexpr size_t kMaxBatchBytes = 4 << 20;
  // Calls waiting beyond this are refused at once ("retry later"): the queue stays bounded.
  static constexpr size_t kMaxQueued = 100000;
  static constexpr std::chrono::milliseconds kPoll{1000};
  // Times calls queued meanwhile join a batch that holds the write lock (each a round trip
  // while other brokers wait for the lock).
  static constexpr int kMaxJoins = 4;

  // `store` is the engine's (the engine owns it); both outlive this thread. A call that waited
  // longer than `deadline` for its batch is answered "unavailable" without being run (its
  // caller has waited as long as the store's own deadline allows).
  BatchThread(Engine& engine, SharedPostgresStore& store, std::chrono::milliseconds deadline);
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
    std::chrono::steady_clock::time_point queued;
  };

 private:
  void Loop();
  // The calls queued, as many as may join `batch` (kMaxBatch, kMaxBatchBytes).
  std::vector<Call> Take(const std::vector<Call>& batch);
  void Expire(std::vector<Call>& calls);
  // Puts calls[from...] back at the front of the queue, in their order: they did not run.
  void Requeue(std::vector<Call>& calls, size_t from);
  void RunCalls(std::vector<Call>& calls);
  void RunBatch(std::vector<Call>& calls);
  // Calls queued while a batch that holds the write lock ran join it (what they read that the
  // batch has not is read then): its round trips and its commit, whose WAL flush is most of a
  // write batch's cost, are shared by more calls. Without it, with every device keeping one
  // request in flight, half of them waited for the next batch. Not after a round trip that took
  // more than a tenth of the deadline.
  void Join(std::vector<Call>& calls);
  void Wake();

  Engine& engine_;
  SharedPostgresStore& store_;
  const std::chrono::milliseconds deadline_;
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
