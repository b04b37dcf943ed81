// Failures of the shared PostgreSQL store inside a batch (found reviewing issue 16): over the store, the
// engine and its batch thread, as plugin.cpp wires them (no broker needed).
//
// Each test makes the batch's connection die in the middle of a batch, the way a PostgreSQL
// restart, a failover or a network cut does: an observer, called on the batch thread while
// the batch's transaction is open, has the server terminate that backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <iostream>
#include <mutex>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cluster/batch_thread.hpp"
#include "engine/engine.hpp"
#include "store/postgres_shared_store.hpp"
#include "tests/support/postgres.hpp"

namespace twins {
namespace {

using namespace std::chrono_literals;

// Terminates the batch connection's backend (the one idle in a transaction) when armed and a
// write of `twin` is made; records the observers' durability notices.
class Saboteur : public WriteObserver {
 public:
  void OnWrite(const WriteEvent& event) noexcept override {
    if (!armed.exchange(false)) return;
    const std::string error = test::SharedPostgres().Exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mosquitto-twins'"
        " AND state = 'idle in transaction'");
    EXPECT_EQ(error, "");
    // Until the backend is gone, so that the batch's next round trip finds its connection lost.
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto in_transaction = [] {
      auto count = test::SharedPostgres().Value(
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mosquitto-twins'"
          " AND state = 'idle in transaction'");
      return !count.ok() || *count != "0";
    };
    while (in_transaction() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    (void)event;
  }
  void OnDurable(uint64_t seq) noexcept override {
    uint64_t seen = durable.load();
    while (seq > seen && !durable.compare_exchange_weak(seen, seq)) {
    }
  }
  std::atomic<bool> armed{false};
  std::atomic<uint64_t> durable{0};
};

class SharedStoreFailureTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(test::SharedPostgres().ok()) << test::SharedPostgres().error();
    static int schemas = 0;
    PostgresOptions options;
    options.uri = test::SharedPostgres().Uri();
    options.schema = "failure_" + std::to_string(++schemas);
    options.timeout_ms = getenv("REVIEW_TIMEOUT_MS") ? atoi(getenv("REVIEW_TIMEOUT_MS")) : 2000;
    schema_ = options.schema;
    auto store = OpenSharedPostgresStore(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    SharedPostgresStore& shared = **store;
    shared_ = &shared;
    engine_ = std::make_unique<Engine>(std::move(store).value(), Limits());
    engine_->AddObserver(&saboteur_);
    batches_ = std::make_unique<BatchThread>(*engine_, shared, std::chrono::milliseconds(options.timeout_ms));
    engine_->SetBatchRunner(batches_.get());
    batches_->Start();
  }
  void TearDown() override {
    if (release_) {  // a test that stopped early must not leave the batch thread held
      try {
        release_->set_value();
      } catch (const std::future_error&) {
        // Released already.
      }
    }
    batches_.reset();
    engine_.reset();
  }

  static WriteRequest Body(const std::string& body) {
    auto request = ParseWriteRequest(body, Limits());
    EXPECT_TRUE(request.ok());
    return std::move(request).value();
  }

  // Keeps the batch thread busy until Release(), so that the calls made meanwhile share the
  // next batch (as the requests of one broker loop pass or of concurrent REST calls do); with
  // `writes`, inside a batch that holds the write lock, which those calls join.
  void HoldTheBatchThread(bool writes = false) {
    auto started = std::make_shared<std::promise<void>>();
    release_ = std::make_shared<std::promise<void>>();
    batches_->Submit(
        {"hold", "", writes},
        [started, released = release_->get_future().share()] {
          started->set_value();
          released.wait();
        },
        [](const Status&) {});
    started->get_future().wait();
  }
  // Until `count` calls wait for the next batch, 10 s at most.
  bool AwaitQueued(size_t count) const {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (batches_->queued() < count && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    return batches_->queued() >= count;
  }
  // Queues a put of twin/doc, run in the next batch (or joining the held one); its outcome is
  // in `done` once settled.
  struct Outcome {
    std::optional<Result<Document>> result;  // read once `done`
    std::optional<Status> settled;
    std::atomic<bool> done{false};
  };
  void QueuePut(const std::string& twin, const std::string& doc, const std::string& body, Outcome* done) {
    const WriteRequest request = Body(body);
    batches_->Submit(
        {twin, doc, true, request.data.size()},
        [this, twin, doc, request, done] { done->result = engine_->Put(twin, doc, request); },
        [done](const Status& s) {
          done->settled = s;
          done->done = true;
        });
  }
  // Until every one of `outcomes` is settled, 10 s at most.
  static bool AwaitSettled(const std::vector<Outcome*>& outcomes) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    auto all = [&] {
      return std::all_of(outcomes.begin(), outcomes.end(), [](const Outcome* o) { return o->done.load(); });
    };
    while (!all() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    return all();
  }
  // Lets the held batch thread go on, once `count` calls wait for the next batch.
  void Release(size_t count) {
    EXPECT_TRUE(AwaitQueued(count));
    release_->set_value();
  }

  std::shared_ptr<std::promise<void>> release_;
  std::string schema_;
  SharedPostgresStore* shared_ = nullptr;  // the engine's store

  Saboteur saboteur_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<BatchThread> batches_;
};

// A write is acknowledged although its batch never committed: the connection was lost on a
// later call's round trip (a List, read in the transaction), which sets in_batch_ = false, so
// SharedStore::Sync() returns Ok without sending anything.
TEST_F(SharedStoreFailureTest, AWriteIsNotAcknowledgedWhenTheConnectionIsLostLaterInItsBatch) {
  ASSERT_TRUE(engine_->Put("t1", "seed", Body(R"({"data":{}})")).ok());
  HoldTheBatchThread();
  std::promise<Result<Document>> put_done;
  std::thread writer([&] {
    saboteur_.armed = true;
    put_done.set_value(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")));
  });
  ASSERT_TRUE(AwaitQueued(1));  // the lister is queued after the put, in the same batch
  std::thread lister([&] { (void)engine_->List("t2"); });
  Release(2);
  writer.join();
  lister.join();
  const Result<Document> put = put_done.get_future().get();
  const Result<Document> read = engine_->Get("t1", "a");
  // An acknowledged write must be there.
  EXPECT_FALSE(put.ok() && !read.ok()) << "put acknowledged (version " << (put.ok() ? put->version : 0)
                                       << ") but the document is " << read.status().message();
}

// A read in the batch of a write that then failed to commit shows that write: a version the
// store never held (another write may give that version other data later).
TEST_F(SharedStoreFailureTest, AReadDoesNotShowAWriteWhoseBatchDidNotCommit) {
  HoldTheBatchThread();
  std::promise<Result<Document>> put_done, get_done;
  std::thread writer([&] {
    saboteur_.armed = true;
    put_done.set_value(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")));
  });
  ASSERT_TRUE(AwaitQueued(1));
  std::thread reader([&] { get_done.set_value(engine_->Get("t1", "a")); });
  Release(2);
  writer.join();
  reader.join();
  const Result<Document> put = put_done.get_future().get();
  const Result<Document> got = get_done.get_future().get();
  ASSERT_FALSE(put.ok()) << "the saboteur did not fail the batch";
  EXPECT_FALSE(got.ok()) << "read version " << got->version << " " << got->data << ", which was never committed";
  const Result<Document> again = engine_->Get("t1", "a");
  EXPECT_FALSE(again.ok());
}

// After a batch whose commit failed, a batch without the write lock (a read, or the idle
// one-second poll) sets durable_seq_ to the seqs the failed batch took and never committed.
// The next writes reuse those seqs: Engine::Sync sees no advance, so the observers (pushes,
// MQTT event feed, time series) never hear that they are durable, and the event streams'
// WaitForChanges returns at once (a busy loop of SQL queries per SSE stream).
TEST_F(SharedStoreFailureTest, AfterAFailedCommitTheNextWritesAreStillReportedDurable) {
  // A failed batch of two writes (seqs 1 and 2, never committed).
  HoldTheBatchThread();
  std::thread first([&] {
    saboteur_.armed = true;
    EXPECT_FALSE(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")).ok());
  });
  ASSERT_TRUE(AwaitQueued(1));
  std::thread second([&] { EXPECT_FALSE(engine_->Put("t1", "b", Body(R"({"data":{"x":1}})")).ok()); });
  Release(2);
  first.join();
  second.join();
  EXPECT_EQ(engine_->Get("t1", "a").status().code(), Code::kNotFound);  // a batch without the lock
  auto put = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  ASSERT_TRUE(put.ok()) << put.status().message();
  const uint64_t newest = engine_->Changes().newest;
  EXPECT_GE(newest, 1u);
  // The observers hear of a batch after its callers (replies before pushes): up to 10 s.
  const auto heard_by = std::chrono::steady_clock::now() + 10s;
  while (saboteur_.durable.load() < newest && std::chrono::steady_clock::now() < heard_by) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_GE(saboteur_.durable.load(), newest) << "the observers never heard that seq " << newest << " is durable";
  const auto start = std::chrono::steady_clock::now();
  const uint64_t woke = engine_->WaitForChanges(newest, start + 500ms);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 400ms)
      << "WaitForChanges(" << newest << ") returned " << woke << " at once: an event stream spins";
}

// The batch connection prepares each statement once and runs it by name after (postgres_shared_store.cpp,
// Run). A new connection knows none of them: the first batch on it prepares them again rather than
// naming statements that exist only on the connection that was lost.
TEST_F(SharedStoreFailureTest, AfterTheConnectionIsLostTheStatementsArePreparedAgain) {
  ASSERT_TRUE(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")).ok());  // a write batch and a read batch,
  ASSERT_TRUE(engine_->Get("t1", "a").ok());                               // their statements prepared
  ASSERT_EQ(test::SharedPostgres().Exec("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                                        " WHERE application_name = 'mosquitto-twins'"),
            "");
  // Until the idle batch thread has found the connection gone, so that the next batch makes a new one.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!shared_->Stats().stopped && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(shared_->Stats().stopped);
  const uint64_t failed_before = batches_->failed();
  const Result<Document> put = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->version, 2u);
  const Result<Document> got = engine_->Get("t1", "a");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->version, 2u);
  EXPECT_EQ(got->data, R"({"x":2})");
  EXPECT_EQ(batches_->failed(), failed_before);
}

// A prepared statement whose table changed its result's type fails (PostgreSQL: "cached plan must
// not change result type"): that batch fails, and the next one prepares its statements again
// instead of failing the same way for as long as the connection lives.
TEST_F(SharedStoreFailureTest, AfterABatchFailsTheStatementsArePreparedAgain) {
  ASSERT_TRUE(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")).ok());
  ASSERT_TRUE(engine_->Get("t1", "a").ok());
  ASSERT_EQ(test::SharedPostgres().Exec("ALTER TABLE " + schema_ + ".documents ALTER COLUMN version TYPE numeric"), "");
  const uint64_t failed_before = batches_->failed();
  EXPECT_FALSE(engine_->Get("t1", "a").ok()) << "the read did not run a statement prepared before the change";
  EXPECT_EQ(batches_->failed() - failed_before, 1u);
  const Result<Document> got = engine_->Get("t1", "a");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->version, 1u);
  const Result<Document> put = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->version, 2u);
  EXPECT_EQ(batches_->failed() - failed_before, 1u);
}

// A batch that wrote nothing sends its COMMIT and goes on; the next batch is sent behind it.
// When the connection is found lost there, that next batch fails (nothing of it applied), and
// the one after connects again and runs.
TEST_F(SharedStoreFailureTest, AReadBatchThatLosesItsConnectionFailsAtMostTheNextBatch) {
  ASSERT_TRUE(engine_->Put("t1", "a", Body(R"({"data":{"x":1}})")).ok());
  HoldTheBatchThread();  // a batch without the write lock, its transaction open
  ASSERT_EQ(
      test::SharedPostgres().Exec("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                                  " WHERE application_name = 'mosquitto-twins' AND state = 'idle in transaction'"),
      "");
  std::promise<Result<Document>> put_done;
  std::thread writer([&] { put_done.set_value(engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"))); });
  Release(1);
  writer.join();
  Result<Document> put = put_done.get_future().get();
  if (!put.ok()) {
    EXPECT_EQ(put.status().code(), Code::kUnavailable) << put.status().message();
    put = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  }
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(put->version, 2u);
}

// Calls queued while a batch holding the write lock runs join it (BatchThread::Join): they run
// after its calls, in order, over what the batch wrote, and commit with it.
TEST_F(SharedStoreFailureTest, CallsQueuedWhileAWriteBatchRunsJoinItAndCommitWithIt) {
  ASSERT_TRUE(engine_->Put("t1", "a", Body(R"({"data":{"x":0}})")).ok());
  HoldTheBatchThread(true);
  const uint64_t batches = batches_->batches();  // the held batch counted
  Outcome first, second, third, other;
  QueuePut("t1", "a", R"({"data":{"x":1}})", &first);
  QueuePut("t1", "a", R"({"data":{"x":2}})", &second);
  QueuePut("t1", "a", R"({"data":{"x":3}})", &third);
  QueuePut("t2", "b", R"({"data":{"y":1}})", &other);  // a twin the batch had not read
  Release(4);
  ASSERT_TRUE(AwaitSettled({&first, &second, &third, &other}));
  EXPECT_EQ(batches_->batches(), batches) << "the queued calls ran in a batch of their own";
  uint64_t version = 1;
  for (Outcome* put : {&first, &second, &third}) {
    ASSERT_TRUE(put->settled->ok()) << put->settled->message();
    ASSERT_TRUE(put->result && put->result->ok());
    EXPECT_EQ((*put->result)->version, ++version);
  }
  ASSERT_TRUE(other.settled->ok() && other.result && other.result->ok());
  EXPECT_EQ((*other.result)->version, 1u);
  const Result<Document> got = engine_->Get("t1", "a");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ(got->version, 4u);
  EXPECT_EQ(got->data, R"({"x":3})");
  EXPECT_TRUE(engine_->Get("t2", "b").ok());
}

// A call that joined a batch fails with it: here its write has the connection killed before the
// commit; nothing of the batch is stored, and the next batch runs.
TEST_F(SharedStoreFailureTest, ACallThatJoinedABatchFailsWithIt) {
  HoldTheBatchThread(true);
  Outcome put;
  saboteur_.armed = true;
  QueuePut("t1", "a", R"({"data":{"x":1}})", &put);
  Release(1);
  ASSERT_TRUE(AwaitSettled({&put}));
  EXPECT_FALSE(put.settled->ok());
  EXPECT_EQ(engine_->Get("t1", "a").status().code(), Code::kNotFound);
  const Result<Document> again = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->version, 1u);
}

// The connection lost before a call joins: reading what it needs fails, so it does not run in
// that batch, which fails; it goes back to the queue and the next batch (a new connection)
// runs it. Answered only then: after the failed batch's own calls.
TEST_F(SharedStoreFailureTest, ACallJoiningABatchWhoseConnectionIsLostRunsInTheNextBatch) {
  HoldTheBatchThread(true);
  ASSERT_EQ(
      test::SharedPostgres().Exec("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                                  " WHERE application_name = 'mosquitto-twins' AND state = 'idle in transaction'"),
      "");
  Outcome put;
  QueuePut("t1", "a", R"({"data":{"x":1}})", &put);
  Release(1);
  ASSERT_TRUE(AwaitSettled({&put}));
  EXPECT_TRUE(put.settled->ok()) << put.settled->message();
  ASSERT_TRUE(put.result.has_value() && put.result->ok()) << "the call did not run in the next batch";
  EXPECT_EQ((*put.result)->version, 1u);
  const Result<Document> again = engine_->Put("t1", "a", Body(R"({"data":{"x":2}})"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->version, 2u);
}

// A flood of the largest documents a device may write: batches hold at most kMaxBatchBytes,
// so each fits the deadline; calls that waited past it are refused without being run. Every
// call is either acknowledged and committed, or refused and not committed: none is both.
TEST_F(SharedStoreFailureTest, AFloodOfTheLargestDocumentsIsCommittedOrRefusedNeverBoth) {
  std::string big = R"({"data":{"k":")";
  // Quotes in the data are escaped twice in the array literal ({"...\"..."}).
  while (big.size() < Limits().max_document_bytes - 200) big += "\\\"x\\\"";
  big += R"("}})";
  const WriteRequest request = Body(big);
  HoldTheBatchThread();
  constexpr int kCalls = 1000;
  std::vector<std::atomic<int>> outcome(kCalls);  // 0 pending, 1 acknowledged, 2 refused
  std::atomic<int> settled{0};
  for (int i = 0; i < kCalls; ++i) {
    batches_->Submit(
        {"big" + std::to_string(i), "d", true, request.data.size()},
        [&, i] { (void)engine_->Put("big" + std::to_string(i), "d", request); },
        [&, i](const Status& s) {
          outcome[i] = s.ok() ? 1 : 2;
          ++settled;
        });
  }
  const auto start = std::chrono::steady_clock::now();
  Release(kCalls);
  while (settled < kCalls) std::this_thread::sleep_for(10ms);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  int acknowledged = 0;
  for (int i = 0; i < kCalls; ++i) {
    const bool stored = engine_->Get("big" + std::to_string(i), "d").ok();
    EXPECT_EQ(stored, outcome[i] == 1) << i;
    acknowledged += outcome[i] == 1 ? 1 : 0;
  }
  std::cout << kCalls << " writes of " << request.data.size() << " bytes: " << ms << " ms, " << acknowledged
            << " acknowledged, the others refused" << std::endl;
  EXPECT_GT(acknowledged, 0);
}

}  // namespace
}  // namespace twins
