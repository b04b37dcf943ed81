// Found in review: replies of one requester keep the order of its requests (plugin.cpp's
// in_flight: "replies keep the order of their requests") also when calls join a batch that
// holds the write lock (BatchThread::Join). A fake shared store, no PostgreSQL.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/batch_thread.hpp"
#include "engine/engine.hpp"

namespace twins {
namespace {

using namespace std::chrono_literals;

class FakeSharedStore final : public SharedPostgresStore {
 public:
  bool fail_join = false;
  Result<BatchStart> Begin(const BatchReads& reads) override {
    in_batch_ = true;
    failed_ = false;
    BatchStart start;
    if (reads.lock) start.locked_seq = 0;
    return start;
  }
  Result<std::map<std::string, std::vector<WatchRecord>>> Join(const BatchReads&) override {
    if (fail_join) {
      failed_ = true;
      return Status::Unavailable("join failed");
    }
    return std::map<std::string, std::vector<WatchRecord>>();
  }
  void Rollback() override { in_batch_ = false; }
  StoreNotices Wait(int, std::chrono::milliseconds timeout) override {
    std::this_thread::sleep_for(std::min(timeout, std::chrono::milliseconds(5)));
    return {};
  }
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override {
    return std::optional<StoredDocument>();
  }
  Status Write(std::vector<DocumentWrite>) override { return Status::Ok(); }
  Result<std::vector<std::string>> List(std::string_view) const override { return std::vector<std::string>(); }
  Status DeleteAll(std::string_view) override { return Status::Ok(); }
  Status Sync() override {
    in_batch_ = false;
    return failed_ ? Status::Unavailable("batch failed") : Status::Ok();
  }

 private:
  bool in_batch_ = false;
  bool failed_ = false;
};

struct Recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::string> order;
  void Add(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex);
    order.push_back(what);
    cv.notify_all();
  }
  bool AwaitCount(size_t n) {
    std::unique_lock<std::mutex> lock(mutex);
    return cv.wait_for(lock, 5s, [&] { return order.size() >= n; });
  }
};

// A (a write, takes the lock) runs; B of the same requester is queued while it runs; B joins.
void RunScenario(bool fail_join, std::chrono::milliseconds deadline, std::chrono::milliseconds a_takes,
                 std::vector<std::string>* order) {
  auto owned = std::make_unique<FakeSharedStore>();
  FakeSharedStore* store = owned.get();
  store->fail_join = fail_join;
  Engine engine(std::move(owned), Limits());
  BatchThread thread(engine, *store, deadline);
  engine.SetBatchRunner(&thread);
  thread.Start();
  Recorder recorder;
  BatchHint write{"t1", "d1", true, 10};
  thread.Submit(
      write,
      [&] {
        thread.Submit(
            write, [] {}, [&](const Status& s) { recorder.Add("B:" + std::string(s.ok() ? "ok" : "fail")); });
        std::this_thread::sleep_for(a_takes);
      },
      [&](const Status& s) { recorder.Add("A:" + std::string(s.ok() ? "ok" : "fail")); });
  ASSERT_TRUE(recorder.AwaitCount(2));
  std::lock_guard<std::mutex> lock(recorder.mutex);
  *order = recorder.order;
}

// B waited past the deadline by the time the batch's Join takes it: Join answers it "busy" at
// once, before A, which is answered only at the batch's Sync.
TEST(BatchThreadOrder, ExpiredJoinerIsNotAnsweredBeforeEarlierCall) {
  std::vector<std::string> order;
  RunScenario(false, 500ms, 600ms, &order);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "A:ok") << "B's reply overtook A's: " << order[0] << " then " << order[1];
}

// The Join's round trip fails: B is answered at once, A only at Sync.
TEST(BatchThreadOrder, FailedJoinDoesNotAnswerJoinerBeforeEarlierCall) {
  std::vector<std::string> order;
  RunScenario(true, 5000ms, 0ms, &order);
  ASSERT_EQ(order.size(), 2u);
  EXPECT_EQ(order[0], "A:fail") << "B's reply overtook A's: " << order[0] << " then " << order[1];
}

}  // namespace
}  // namespace twins
