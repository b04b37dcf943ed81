// The PostgreSQL store on a real PostgreSQL 15 (tests/support/postgres.hpp): its schema, what
// it refuses to open, all-or-none batches, reconnection after the server restarts, and calls
// bounded in time when the server stops answering. The engine's behaviour over it is
// engine_test's and change_log_test's (PostgreSQL/ instances); failover is
// postgres_failover_test's.
#include "store/postgres_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/failing_peer.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/postgres.hpp"

namespace twins {
namespace {

using std::chrono::milliseconds;
using test::FailingPeer;
using test::SharedPostgres;
using Clock = std::chrono::steady_clock;

// The timeout of the bounded-time tests, and how much later than it a call may end on this
// shared, loaded machine (a thread woken late).
constexpr milliseconds kTimeout(1000);
constexpr milliseconds kSlack(500);

// The shared server frozen (SIGSTOP) for a scope; thawed at its end whatever the test did.
class Frozen {
 public:
  Frozen() { SharedPostgres().Freeze(); }
  ~Frozen() { SharedPostgres().Thaw(); }
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
};

milliseconds Since(Clock::time_point start) { return std::chrono::duration_cast<milliseconds>(Clock::now() - start); }

// A call that waited for a silent server took the timeout: not less, not much more.
void ExpectTheTimeout(milliseconds took) {
  EXPECT_GE(took, kTimeout);
  EXPECT_LT(took, kTimeout + kSlack);
}

class PostgresStoreTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedPostgres().ok()) << SharedPostgres().error();
    static std::atomic<int> schemas{0};
    options_.uri = SharedPostgres().Uri();
    options_.schema = "store_" + std::to_string(++schemas);
  }

  std::unique_ptr<DocumentStore> Open() {
    auto store = OpenPostgresStore(options_);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  static DocumentWrite PutWithChange(const std::string& twin, const std::string& doc, uint64_t version,
                                     const std::string& data, uint64_t seq) {
    auto change = std::make_shared<Change>();
    change->seq = seq;
    change->time_ms = 1000 + static_cast<int64_t>(seq);
    change->twin = twin;
    change->doc = doc;
    change->kind = ChangeKind::kPut;
    change->source = "mqtt";
    change->origin = "client-" + std::to_string(seq);
    change->version = version;
    change->data = data;
    return {twin, doc, StoredDocument{version, data, change->time_ms}, std::move(change)};
  }

  // The store's log lines, from now on.
  void RecordLog() {
    options_.log = [this](LogLevel, const std::string& line) {
      std::lock_guard<std::mutex> lock(lines_mutex_);
      lines_.push_back(line);
    };
  }
  std::vector<std::string> Lines() {
    std::lock_guard<std::mutex> lock(lines_mutex_);
    return lines_;
  }

  // Until the store connects again (it tries at most every 250 ms).
  static void AwaitWritable(DocumentStore& store) {
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (!store.Writable(true).ok()) {
      ASSERT_LT(Clock::now(), deadline) << store.Writable(true).message();
      std::this_thread::sleep_for(milliseconds(10));
    }
  }

  // With kTimeout and the log recorded: a store holding dev1/d at version 1.
  std::unique_ptr<DocumentStore> OpenBounded() {
    RecordLog();
    options_.timeout_ms = static_cast<int>(kTimeout.count());
    auto store = Open();
    if (store != nullptr) {
      EXPECT_TRUE(store->Put("dev1", "d", {1, R"({"n":1})", 1}).ok());
    }
    return store;
  }

  // How messages name the shared server.
  std::string SharedServer() const { return "PostgreSQL at 127.0.0.1:" + std::to_string(SharedPostgres().port()); }

  PostgresOptions options_;
  std::mutex lines_mutex_;
  std::vector<std::string> lines_;
};

TEST_F(PostgresStoreTest, CreatesItsSchemaOnFirstOpenAndKeepsDataByteForByte) {
  // Escapes, quotes, backslashes and non-ASCII text stay exactly as written (text, not jsonb).
  const std::string data = R"({"b":1, "a":"\"\\\u00e9 é \ud83d\ude00","n":1.50})";
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->Put("dev1", "desired", {3, data, 1234}).ok());
  }
  EXPECT_EQ(SharedPostgres().Exec("SELECT value FROM " + options_.schema + ".meta"), "");
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto got = store->Get("dev1", "desired");
  ASSERT_TRUE(got.ok()) << got.status().message();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->data, data);
  EXPECT_EQ((*got)->version, 3u);
  EXPECT_EQ((*got)->modified_ms, 1234);
  EXPECT_FALSE(store->Get("dev1", "other")->has_value());
}

TEST_F(PostgresStoreTest, UnknownSchemaVersionIsRefused) {
  ASSERT_NE(Open(), nullptr);
  ASSERT_EQ(SharedPostgres().Exec("UPDATE " + options_.schema + ".meta SET value = '7'"), "");
  auto store = OpenPostgresStore(options_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(),
            "schema " + options_.schema + " has twins schema version 7, this build reads only 1");
}

TEST_F(PostgresStoreTest, SchemaHoldingOtherTablesIsRefused) {
  ASSERT_EQ(SharedPostgres().Exec("CREATE SCHEMA " + options_.schema + "; CREATE TABLE " + options_.schema +
                                  ".invoices (id int)"),
            "");
  auto store = OpenPostgresStore(options_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(),
            "schema " + options_.schema + " holds tables but no twins schema version: not a twins schema");
}

TEST_F(PostgresStoreTest, BadUriOrUnreachableServerIsAClearError) {
  // libpq quotes a URI it cannot parse: the password in it is not repeated.
  options_.uri = "postgresql://twins:s3cret@[::1";
  auto bad = OpenPostgresStore(options_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "cannot connect to PostgreSQL: end of string reached when looking for matching \"]\" in IPv6 host "
            "address in URI: \"<the connection URI>\"");

  options_.uri = "postgresql://postgres@127.0.0.1:1/postgres";
  auto refused = OpenPostgresStore(options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("Connection refused"), std::string::npos) << refused.status().message();

  options_.uri = SharedPostgres().Uri();
  options_.schema = "Bad-Name";
  auto named = OpenPostgresStore(options_);
  ASSERT_FALSE(named.ok());
  EXPECT_NE(named.status().message().find("lower-case letters"), std::string::npos) << named.status().message();

  options_.schema = "twins";
  options_.password_file = SharedPostgres().dir() + "/no-such-file";
  auto no_file = OpenPostgresStore(options_);
  ASSERT_FALSE(no_file.ok());
  EXPECT_EQ(no_file.status().message(), "cannot read the PostgreSQL password file " + options_.password_file);
}

// A role that owns its schema and nothing else (no CREATE on the database) is enough; without
// the schema, it is told why it cannot make one.
TEST_F(PostgresStoreTest, ARoleOwningOnlyItsSchemaIsEnough) {
  const std::string role = options_.schema + "_role";
  ASSERT_EQ(SharedPostgres().Exec("CREATE ROLE " + role + " LOGIN; CREATE SCHEMA " + options_.schema +
                                  " AUTHORIZATION " + role),
            "");
  options_.uri = SharedPostgres().Uri(role);
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("dev1", "d", {1, "{}", 1}).ok());
  EXPECT_EQ(*store->List("dev1"), std::vector<std::string>{"d"});

  options_.schema += "_missing";
  auto refused = OpenPostgresStore(options_);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(
      refused.status().message().find("cannot create the twins schema " + options_.schema +
                                      ": PostgreSQL error 42501: ERROR:  permission denied for database postgres"),
      std::string::npos)
      << refused.status().message();
}

// The password comes from the password file (libpq's passfile); without it, a clear error.
TEST_F(PostgresStoreTest, PasswordFileGivesThePassword) {
  const std::string role = options_.schema + "_pw";
  ASSERT_EQ(SharedPostgres().Exec("CREATE ROLE " + role + " LOGIN PASSWORD 'p4ss:word'; CREATE SCHEMA " +
                                  options_.schema + " AUTHORIZATION " + role),
            "");
  // This role, and only it, must give a password over TCP: a first line in pg_hba.conf.
  const std::string hba = SharedPostgres().dir() + "/data/pg_hba.conf";
  std::stringstream rest;
  rest << std::ifstream(hba).rdbuf();
  std::ofstream(hba) << "host all " << role << " 127.0.0.1/32 scram-sha-256\n" << rest.str();
  ASSERT_EQ(SharedPostgres().Exec("SELECT pg_reload_conf()"), "");

  options_.uri = SharedPostgres().Uri(role);
  std::unique_ptr<DocumentStore> store;
  // pg_reload_conf() only signals the server: wait until the new rule is in force.
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);;) {
    auto refused = OpenPostgresStore(options_);
    if (!refused.ok()) {
      EXPECT_NE(refused.status().message().find("no password supplied"), std::string::npos)
          << refused.status().message();
      break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "pg_hba.conf was not reloaded";
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  options_.password_file = SharedPostgres().dir() + "/pgpass";
  std::ofstream(options_.password_file) << "127.0.0.1:" << SharedPostgres().port() << ":postgres:" << role
                                        << ":p4ss\\:word\n";
  chmod(options_.password_file.c_str(), 0600);
  store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->Put("dev1", "d", {1, "{}", 1}).ok());
}

TEST_F(PostgresStoreTest, ABatchIsAllOrNone) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<DocumentWrite> first;
  first.push_back(PutWithChange("a", "d", 1, R"({"n":1})", 1));
  ASSERT_TRUE(store->Write(std::move(first)).ok());
  // The second entry reuses seq 1: the log refuses it, and the whole batch goes.
  std::vector<DocumentWrite> batch;
  batch.push_back(PutWithChange("b", "d", 1, R"({"n":2})", 2));
  batch.push_back(PutWithChange("a", "d", 2, R"({"n":3})", 1));
  Status refused = store->Write(std::move(batch));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("PostgreSQL error 23505"), std::string::npos) << refused.message();
  EXPECT_FALSE(store->Get("b", "d")->has_value());
  EXPECT_EQ((*store->Get("a", "d"))->version, 1u);
  EXPECT_EQ(store->ReadChanges(0, 10, 1 << 20)->size(), 1u);
  EXPECT_EQ(store->Changes().newest, 1u);
  EXPECT_EQ(store->Stats().write_failures, 1u);
  // Sync reports the failed write once: its changes may be lost.
  EXPECT_FALSE(store->Sync().ok());
  EXPECT_TRUE(store->Sync().ok());
}

// A batch (the write-behind queue) may write one document several times: the last write wins,
// and every write keeps its log entry.
TEST_F(PostgresStoreTest, ABatchWritingOneDocumentSeveralTimesEndsWithTheLast) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  std::vector<DocumentWrite> batch;
  batch.push_back(PutWithChange("a", "d", 1, R"({"n":1})", 1));
  batch.push_back(PutWithChange("a", "d", 2, R"({"n":2})", 2));
  auto deletion = std::make_shared<Change>(*batch.back().change);
  deletion->seq = 3;
  deletion->kind = ChangeKind::kDelete;
  deletion->data.clear();
  batch.push_back({"a", "d", std::nullopt, deletion});
  batch.push_back(PutWithChange("a", "e", 1, "{}", 4));
  batch.push_back({"a", "e", std::nullopt, nullptr});
  batch.push_back(PutWithChange("a", "d", 1, R"({"n":4})", 5));
  ASSERT_TRUE(store->Write(std::move(batch)).ok());
  EXPECT_EQ((*store->Get("a", "d"))->data, R"({"n":4})");
  EXPECT_FALSE(store->Get("a", "e")->has_value());
  auto changes = store->ReadChanges(0, 10, 1 << 20);
  ASSERT_EQ(changes->size(), 5u);
  EXPECT_EQ((*changes)[2].kind, ChangeKind::kDelete);
  EXPECT_EQ((*changes)[4].origin, "client-5");
  // Version 1 was made twice: the newest entry of it is found.
  EXPECT_EQ((*store->FindVersion("a", "d", 1))->data, R"({"n":4})");
  EXPECT_EQ(*store->OldestVersion("a", "d"), 1u);
  EXPECT_EQ(*store->OldestVersion("a", "zz"), 0u);
  // At most about max_bytes of data, at least one entry.
  EXPECT_EQ(store->ReadChanges(0, 10, 1)->size(), 1u);
  EXPECT_EQ(store->ReadChanges(0, 2, 1 << 20)->size(), 2u);
  EXPECT_EQ(store->ReadChanges(3, 10, 1 << 20)->front().seq, 4u);
  // Bounds past PostgreSQL's bigint mean "no bound".
  EXPECT_EQ(store->ReadChanges(0, SIZE_MAX, SIZE_MAX)->size(), 5u);
  EXPECT_TRUE(store->ReadChanges(UINT64_MAX, 10, 1 << 20)->empty());
  EXPECT_FALSE(store->FindVersion("a", "d", UINT64_MAX)->has_value());
}

TEST_F(PostgresStoreTest, ListSortsBytewiseAndDeleteAllCountsAndWatches) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  for (const char* doc : {"b", "B", "_config", "a", "Z"}) ASSERT_TRUE(store->Put("dev1", doc, {1, "{}", 1}).ok());
  ASSERT_TRUE(store->Put("dev2", "a", {1, "{}", 1}).ok());
  EXPECT_EQ(*store->List("dev1"), (std::vector<std::string>{"B", "Z", "_config", "a", "b"}));
  EXPECT_EQ(*store->CountTwins(), 2u);
  EXPECT_EQ(store->CountContents()->documents, 6u);
  ASSERT_TRUE(store->DeleteAll("dev1").ok());
  EXPECT_TRUE(store->List("dev1")->empty());
  EXPECT_EQ(*store->CountTwins(), 1u);
  EXPECT_GT(store->Stats().disk_bytes, 0u);

  ASSERT_TRUE(store->PutWatch({"t", "d", "w2", "old"}).ok());
  ASSERT_TRUE(store->PutWatch({"t", "d", "w1", "1"}).ok());
  ASSERT_TRUE(store->PutWatch({"t", "d", "w2", "new"}).ok());
  ASSERT_TRUE(store->DeleteWatch("t", "d", "nobody").ok());
  auto watches = store->ListWatches();
  ASSERT_EQ(watches->size(), 2u);
  EXPECT_EQ((*watches)[0].watcher, "w1");
  EXPECT_EQ((*watches)[1].value, "new");
  ASSERT_TRUE(store->DeleteWatch("t", "d", "w1").ok());
  EXPECT_EQ(store->ListWatches()->size(), 1u);
}

// The server stops and starts again under an open store: calls fail with a clear error
// meanwhile, Writable() and Stats() say so, and later calls work without reopening.
TEST_F(PostgresStoreTest, ReconnectsAfterTheServerRestarts) {
  RecordLog();
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("dev1", "d", {1, R"({"n":1})", 1}).ok());
  ASSERT_TRUE(store->Writable(true).ok());

  ASSERT_TRUE(SharedPostgres().Stop());
  auto lost = store->Get("dev1", "d");
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().message().rfind("PostgreSQL connection lost: ", 0), 0u) << lost.status().message();
  Status down = store->Put("dev1", "d", {2, R"({"n":2})", 2});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.message().rfind("PostgreSQL cannot be reached: ", 0), 0u) << down.message();
  EXPECT_FALSE(store->Writable(true).ok());
  EXPECT_TRUE(store->Stats().stopped);

  ASSERT_TRUE(SharedPostgres().Start()) << SharedPostgres().error();
  AwaitWritable(*store);
  EXPECT_FALSE(store->Stats().stopped);
  EXPECT_EQ((*store->Get("dev1", "d"))->data, R"({"n":1})");
  EXPECT_FALSE(store->Sync().ok());  // the write refused during the outage
  ASSERT_TRUE(store->Put("dev1", "d", {2, R"({"n":2})", 2}).ok());
  EXPECT_TRUE(store->Sync().ok());
  EXPECT_EQ((*store->Get("dev1", "d"))->version, 2u);
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);  // one line at the start of the outage, one at its end
  EXPECT_NE(lines[0].find("calls fail until it is back"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("PostgreSQL connection restored"), std::string::npos) << lines[1];
}

}  // namespace
}  // namespace twins

namespace twins {
namespace {

// The server stops answering (SIGSTOP: its kernel still accepts and acknowledges, so only the
// client's own deadline ends the wait): a read fails when the timeout is up, not before and not
// much after, with the connection closed. Once the server answers again the next call works,
// without reopening the store. One log line when the outage starts, one when it ends.
TEST_F(PostgresStoreTest, AReadFailsWithinTheTimeoutWhenTheServerStopsAnswering) {
  auto store = OpenBounded();
  ASSERT_NE(store, nullptr);
  {
    Frozen frozen;
    const auto start = Clock::now();
    auto got = store->Get("dev1", "d");
    const milliseconds took = Since(start);
    RecordProperty("read_failed_after_ms", static_cast<int>(took.count()));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().message(), SharedServer() + " did not answer within 1 s");
    ExpectTheTimeout(took);
    EXPECT_TRUE(store->Stats().stopped);
  }
  auto got = store->Get("dev1", "d");
  ASSERT_TRUE(got.ok()) << got.status().message();
  EXPECT_EQ((*got)->data, R"({"n":1})");
  const std::vector<std::string> lines = Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], SharedServer() + " did not answer within 1 s; calls fail until it is back");
  EXPECT_NE(lines[1].find("PostgreSQL connection restored (down for "), std::string::npos) << lines[1];
}

// A write fails alike; so does the next call, which finds the connection closed and tries to
// connect to the silent server. A write that timed out may still be applied: the server has the
// statement and runs it once it resumes (the outcome of a timed-out write is unknown).
TEST_F(PostgresStoreTest, AWriteAndReconnectingFailWithinTheTimeoutWhenTheServerStopsAnswering) {
  auto store = OpenBounded();
  ASSERT_NE(store, nullptr);
  {
    Frozen frozen;
    auto start = Clock::now();
    Status written = store->Put("dev1", "d", {2, R"({"n":2})", 2});
    milliseconds took = Since(start);
    RecordProperty("write_failed_after_ms", static_cast<int>(took.count()));
    ASSERT_FALSE(written.ok());
    EXPECT_EQ(written.message(), SharedServer() + " did not answer within 1 s");
    ExpectTheTimeout(took);

    start = Clock::now();
    Status reconnect = store->Writable(true);
    took = Since(start);
    EXPECT_EQ(reconnect.message(), "PostgreSQL cannot be reached: " + SharedServer() + " did not answer within 1 s");
    ExpectTheTimeout(took);
    // Until the next attempt, calls fail at once with the same reason.
    start = Clock::now();
    EXPECT_EQ(store->Get("dev1", "d").status().message(), reconnect.message());
    EXPECT_LT(Since(start), milliseconds(100));
  }
  AwaitWritable(*store);
  const uint64_t version = (*store->Get("dev1", "d"))->version;
  RecordProperty("version_after_the_server_resumed", static_cast<int>(version));
  EXPECT_TRUE(version == 1 || version == 2) << version;
  ASSERT_TRUE(store->Put("dev1", "d", {3, R"({"n":3})", 3}).ok());
  EXPECT_EQ((*store->Get("dev1", "d"))->data, R"({"n":3})");
  EXPECT_FALSE(store->Sync().ok());  // the write that timed out is reported once
  EXPECT_EQ(Lines().size(), 2u);
}

// Several threads call at once while the server is silent: each call, its wait for the
// connection included, ends within the timeout.
TEST_F(PostgresStoreTest, EveryCallOfSeveralThreadsEndsWithinTheTimeout) {
  options_.timeout_ms = static_cast<int>(kTimeout.count());
  auto store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->Put("dev1", "d", {1, "{}", 1}).ok());
  std::atomic<int64_t> longest_ms{0};
  std::atomic<int> calls{0}, succeeded{0};
  {
    Frozen frozen;
    const auto end = Clock::now() + 3 * kTimeout;
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] {
        while (Clock::now() < end) {
          const auto start = Clock::now();
          const bool ok = store->Get("dev1", "d").ok();
          const int64_t took = Since(start).count();
          for (int64_t seen = longest_ms.load(); took > seen && !longest_ms.compare_exchange_weak(seen, took);) {
          }
          ++calls;
          if (ok) ++succeeded;
          std::this_thread::sleep_for(milliseconds(1));  // a pace, so as not to spin on the two cores
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
  }
  RecordProperty("calls", calls.load());
  RecordProperty("longest_call_ms", static_cast<int>(longest_ms.load()));
  EXPECT_EQ(succeeded.load(), 0);
  EXPECT_GT(calls.load(), 4);
  EXPECT_GE(longest_ms.load(), kTimeout.count());  // the calls that waited for the server
  EXPECT_LT(longest_ms.load(), (kTimeout + kSlack).count());
}

TEST_F(PostgresStoreTest, OpeningFailsWithinTheTimeoutWhenTheServerStopsAnswering) {
  options_.timeout_ms = static_cast<int>(kTimeout.count());
  Frozen frozen;
  const auto start = Clock::now();
  auto store = OpenPostgresStore(options_);
  const milliseconds took = Since(start);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(), "cannot connect to PostgreSQL: " + SharedServer() + " did not answer within 1 s");
  ExpectTheTimeout(took);
}

TEST_F(PostgresStoreTest, ATimeoutBelowOneMillisecondIsRefused) {
  options_.timeout_ms = 0;
  auto store = OpenPostgresStore(options_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(), "the PostgreSQL timeout must be at least 1 ms");
}

// A URI naming several hosts: each gets an even share of the time, so that a first host whose
// network drops packets (connecting never completes) leaves time to reach the second.
TEST_F(PostgresStoreTest, AHostThatDoesNotAnswerLeavesTimeForTheNextOne) {
  const int dropping_port = test::FreePort();
  FailingPeer dropping(FailingPeer::Mode::kTimeout, dropping_port);
  ASSERT_TRUE(dropping.bound());
  options_.timeout_ms = static_cast<int>(kTimeout.count());
  options_.uri = "postgresql://postgres@127.0.0.1:" + std::to_string(dropping_port) +
                 ",127.0.0.1:" + std::to_string(SharedPostgres().port()) + "/postgres?target_session_attrs=read-write";
  const auto start = Clock::now();
  auto store = Open();
  const milliseconds took = Since(start);
  RecordProperty("opened_after_ms", static_cast<int>(took.count()));
  ASSERT_NE(store, nullptr);
  EXPECT_GE(took, kTimeout / 2);
  EXPECT_LT(took, kTimeout);
  ASSERT_TRUE(store->Put("dev1", "d", {1, "{}", 1}).ok());
  EXPECT_EQ((*store->Get("dev1", "d"))->version, 1u);
}

TEST_F(PostgresStoreTest, NoHostAnsweringFailsWithinTheTimeoutNamingEach) {
  const std::vector<int> ports = test::FreePorts(2);
  FailingPeer dropping(FailingPeer::Mode::kTimeout, ports[0]);
  FailingPeer silent(FailingPeer::Mode::kNeverReads, ports[1]);
  ASSERT_TRUE(dropping.bound() && silent.bound());
  options_.timeout_ms = static_cast<int>(kTimeout.count());
  options_.uri = "postgresql://postgres@127.0.0.1:" + std::to_string(ports[0]) +
                 ",127.0.0.1:" + std::to_string(ports[1]) + "/postgres";
  const auto start = Clock::now();
  auto store = OpenPostgresStore(options_);
  const milliseconds took = Since(start);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().message(),
            "cannot connect to PostgreSQL: PostgreSQL at 127.0.0.1:" + std::to_string(ports[0]) +
                " did not answer within 1 s (shared by 2 hosts); PostgreSQL at " +
                "127.0.0.1:" + std::to_string(ports[1]) + " did not answer within 1 s (shared by 2 hosts)");
  ExpectTheTimeout(took);
}

}  // namespace
}  // namespace twins
