// The change log, history and watches of the engine over a real RocksDB, behind the
// write-behind cache as the plugin runs it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/change_json.hpp"
#include "engine/engine.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using std::chrono::steady_clock;

class ChangeLogTest : public testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(uint64_t changelog_bytes = 64 << 20) {
    engine_.reset();
    RocksDbOptions options;
    options.path = dir_.sub("db");
    options.changelog_bytes = changelog_bytes;
    auto store = OpenRocksDbStore(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    Limits limits;
    limits.max_documents = 4;
    limits.max_twins = max_twins_;
    engine_ = std::make_unique<Engine>(WithWriteBehindCache(std::move(store).value(), 1 << 20), limits);
    ASSERT_TRUE(engine_->start_status().ok()) << engine_->start_status().message();
  }

  Result<Document> Put(const std::string& twin, const std::string& doc, const std::string& data,
                       const WriteContext& context = {}) {
    auto request = ParseWriteRequest(R"({"data":)" + data + "}", engine_->limits());
    if (!request.ok()) return request.status();
    return engine_->Put(twin, doc, request.value(), context);
  }

  std::vector<Change> All(uint64_t after = 0) {
    auto changes = engine_->ReadChanges(after, 100000, 1 << 30);
    EXPECT_TRUE(changes.ok()) << changes.status().message();
    return changes.ok() ? std::move(changes).value() : std::vector<Change>();
  }

  test::TempDir dir_;
  size_t max_twins_ = 0;
  std::unique_ptr<Engine> engine_;
};

TEST_F(ChangeLogTest, EveryChangeIsLoggedWithAStrictlyIncreasingSeq) {
  ASSERT_TRUE(Put("a", "d", R"({"x":1})", {Durability::kBeforeReturn, "mqtt", "a"}).ok());
  auto patch = ParseWriteRequest(R"({"data":{"y":2}})", engine_->limits());
  ASSERT_TRUE(engine_->Patch("b", "d", patch.value()).ok());
  ASSERT_TRUE(engine_->Delete("a", "d", {}).ok());
  ASSERT_TRUE(Put("b", "e", "{}").ok());
  ASSERT_TRUE(engine_->DeleteAll("b").ok());
  std::vector<Change> changes = All();
  ASSERT_EQ(changes.size(), 6u);
  std::vector<std::string> seen;
  for (size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i].seq, i + 1);
    seen.push_back(ChangeJson(changes[i]).substr(ChangeJson(changes[i]).find("\"twin_id\"")));
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{
                R"("twin_id":"a","document_name":"d","operation":"put","source":"mqtt","version":1,"data":{"x":1}})",
                R"("twin_id":"b","document_name":"d","operation":"patch","source":"rest","version":1,"data":{"y":2}})",
                R"("twin_id":"a","document_name":"d","operation":"delete","source":"rest","version":1})",
                R"("twin_id":"b","document_name":"e","operation":"put","source":"rest","version":1,"data":{}})",
                R"("twin_id":"b","document_name":"d","operation":"delete","source":"rest","version":1})",
                R"("twin_id":"b","document_name":"e","operation":"delete","source":"rest","version":1})"}));
  EXPECT_EQ(changes[0].origin, "a");
  EXPECT_EQ(All(4).size(), 2u);
  EXPECT_EQ(engine_->Changes().oldest, 1u);
  EXPECT_EQ(engine_->Changes().newest, 6u);
}

TEST_F(ChangeLogTest, RefusedWritesLogNothing) {
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  auto stale = ParseWriteRequest(R"({"version":7,"data":{}})", engine_->limits());
  EXPECT_FALSE(engine_->Put("a", "d", stale.value()).ok());
  EXPECT_FALSE(Put("a", "bad name", "{}").ok());
  EXPECT_FALSE(engine_->Delete("a", "missing", {}).ok());
  EXPECT_EQ(All().size(), 1u);
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  EXPECT_EQ(All().back().seq, 2u);  // no seq was spent on the refusals
}

TEST_F(ChangeLogTest, GroupCommittedChangesShowOnlyOnceSynced) {
  ASSERT_TRUE(Put("a", "d", R"({"n":1})", Durability::kAtSync).ok());
  EXPECT_TRUE(All().empty());
  EXPECT_EQ(engine_->WaitForChanges(0, steady_clock::now()), 0u);
  std::thread syncer([&] { EXPECT_TRUE(engine_->Sync().ok()); });
  EXPECT_EQ(engine_->WaitForChanges(0, steady_clock::now() + std::chrono::seconds(30)), 1u);
  syncer.join();
  EXPECT_EQ(All().size(), 1u);
}

TEST_F(ChangeLogTest, SeqGoesOnAfterAReopenAndDocumentsKeepTheirModifiedTime) {
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  const auto before = std::chrono::system_clock::now();
  Reopen();
  ASSERT_TRUE(Put("a", "e", "{}").ok());
  EXPECT_EQ(All().back().seq, 3u);
  auto doc = engine_->Get("a", "e");
  ASSERT_TRUE(doc.ok());
  const int64_t before_ms = std::chrono::duration_cast<std::chrono::milliseconds>(before.time_since_epoch()).count();
  EXPECT_GE(doc->modified_ms, before_ms);
  EXPECT_EQ(doc->modified_ms, All().back().time_ms);
}

TEST_F(ChangeLogTest, OldVersionsAreReadFromTheLogWhileItKeepsThem) {
  for (int n = 1; n <= 3; ++n) ASSERT_TRUE(Put("a", "d", R"({"n":)" + std::to_string(n) + "}").ok());
  EXPECT_EQ(engine_->GetVersion("a", "d", 1)->data, R"({"n":1})");
  EXPECT_EQ(engine_->GetVersion("a", "d", 3)->data, R"({"n":3})");
  auto future = engine_->GetVersion("a", "d", 9);
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().code(), Code::kNotFound);
  EXPECT_EQ(future.status().message(), "version 9 of this document is not retained; the oldest version retained is 1");
  EXPECT_EQ(engine_->GetVersion("a", "bad name", 1).status().code(), Code::kInvalidArgument);
}

TEST_F(ChangeLogTest, RetentionDropsTheOldestEntriesAndKeepsTheNewest) {
  Reopen(4096);
  const std::string big = R"({"pad":")" + std::string(400, 'x') + "\"}";
  for (int n = 1; n <= 40; ++n) ASSERT_TRUE(Put("a", "d" + std::to_string(n % 3), big).ok());
  const ChangeBounds bounds = engine_->Changes();
  EXPECT_EQ(bounds.newest, 40u);
  EXPECT_GT(bounds.oldest, 1u);
  std::vector<Change> kept = All();
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front().seq, bounds.oldest);
  EXPECT_EQ(kept.back().seq, 40u);
  size_t bytes = 0;
  for (const Change& change : kept) bytes += change.data.size() + 40;
  EXPECT_LE(bytes, 4096u + 512u);
  // History follows retention: a trimmed version is gone, with the oldest named.
  auto trimmed = engine_->GetVersion("a", "d1", 1);
  ASSERT_FALSE(trimmed.ok());
  EXPECT_NE(trimmed.status().message().find("the oldest version retained is"), std::string::npos)
      << trimmed.status().message();
  // The newest stays across a reopen, so seq never goes back.
  Reopen(4096);
  ASSERT_TRUE(Put("a", "d1", "{}").ok());
  EXPECT_EQ(All().back().seq, 41u);
}

TEST_F(ChangeLogTest, WatchesAreKeptWithTheTwinAndBounded) {
  auto watched = engine_->Watch("a", "desired", "client-1", "1me");
  ASSERT_TRUE(watched.ok());
  EXPECT_EQ(watched->version, 0u);
  EXPECT_EQ(watched->data, "{}");
  ASSERT_TRUE(Put("a", "desired", R"({"t":1})").ok());
  EXPECT_EQ(engine_->Watch("a", "desired", "client-2", "0a")->version, 1u);
  ASSERT_TRUE(engine_->DeleteAll("a").ok());
  Reopen();
  auto watches = engine_->Watches("a", "desired");
  ASSERT_EQ(watches.size(), 2u);
  EXPECT_EQ(watches[0].watcher, "client-1");
  EXPECT_EQ(watches[0].value, "1me");
  EXPECT_EQ(watches[1].watcher, "client-2");
  ASSERT_TRUE(engine_->Unwatch("a", "desired", "client-1").ok());
  ASSERT_TRUE(engine_->Unwatch("a", "desired", "nobody").ok());
  Reopen();
  EXPECT_EQ(engine_->Watches("a", "desired").size(), 1u);
  // max_documents 4, plus one.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(engine_->Watch("a", "d" + std::to_string(i), "c", "0").ok());
  auto refused = engine_->Watch("a", "d9", "c", "0");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kQuotaExceeded);
  EXPECT_TRUE(engine_->Watch("a", "d0", "c", "0").ok());  // already watched: no new watch
  EXPECT_EQ(engine_->Watch("a", "bad name", "c", "0").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(engine_->Watch("a", "d", "", "0").status().code(), Code::kInvalidArgument);
}

// A watch is stored with its twin, so a twin with watches and no document is a twin for
// max_twins: else any client could store watches under ever new twins, beyond the bound on
// what a twin holds times max_twins.
TEST_F(ChangeLogTest, AWatchedTwinCountsAgainstMaxTwins) {
  max_twins_ = 2;
  Reopen();
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  ASSERT_TRUE(engine_->Watch("w", "desired", "w", "1me").ok());
  EXPECT_EQ(engine_->twins(), 2u);
  auto refused = engine_->Watch("x", "desired", "x", "1me");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kQuotaExceeded);
  EXPECT_EQ(Put("y", "d", "{}").status().code(), Code::kQuotaExceeded);
  // The watched twin takes no second place with a document, nor with another watch.
  ASSERT_TRUE(Put("w", "desired", "{}").ok());
  ASSERT_TRUE(engine_->Watch("w", "other", "w2", "1me").ok());
  EXPECT_EQ(engine_->twins(), 2u);
  // Counted again at start; its place is freed only once it has neither documents nor watches.
  Reopen();
  EXPECT_EQ(engine_->twins(), 2u);
  ASSERT_TRUE(engine_->DeleteAll("w").ok());
  EXPECT_EQ(engine_->twins(), 2u);
  ASSERT_TRUE(engine_->Unwatch("w", "desired", "w").ok());
  EXPECT_EQ(engine_->twins(), 2u);
  ASSERT_TRUE(engine_->Unwatch("w", "other", "w2").ok());
  EXPECT_EQ(engine_->twins(), 1u);
  EXPECT_TRUE(engine_->Watch("x", "desired", "x", "1me").ok());
}

// A reader that finds entries missing below what it read (trimmed by a concurrent Sync) must
// see the log's oldest past them when it asks next: that is how a stream tells a trim (it
// ends with overflow) from a gap it may pass over. Every write here succeeds, so every seq
// is logged: a hole above the oldest the reader then sees is a silently lost change.
TEST_F(ChangeLogTest, ATrimIsSeenInTheBoundsByAReaderThatMissedItsEntries) {
  Reopen(2048);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int n = 0; n < 50000 && !stop.load(); ++n) {
      static_cast<void>(Put("a", "d" + std::to_string(n % 3), R"({"pad":")" + std::string(200, 'x') + "\"}"));
    }
    stop = true;
  });
  uint64_t silent_gaps = 0, reads = 0;
  while (!stop.load() && silent_gaps == 0) {
    const uint64_t cursor = engine_->Changes().oldest - 1;
    auto batch = engine_->ReadChanges(cursor, 4, 1 << 20);
    ASSERT_TRUE(batch.ok()) << batch.status().message();
    ++reads;
    if (!batch->empty() && batch->front().seq > cursor + 1 && cursor + 1 >= engine_->Changes().oldest) {
      ++silent_gaps;
    }
  }
  stop = true;
  writer.join();
  EXPECT_EQ(silent_gaps, 0u) << "in " << reads << " reads";
}

// A crash never keeps a document without its log entry, or the reverse: a child process
// writes until it is killed, then every document's version is its last logged change's.
TEST_F(ChangeLogTest, AKilledWriterLeavesDocumentsAndTheLogInAgreement) {
  engine_.reset();
  int started[2];
  ASSERT_EQ(pipe(started), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Reopen();
    for (int n = 0;; ++n) {
      static_cast<void>(Put("t" + std::to_string(n % 7), "d" + std::to_string(n % 3),
                            "{\"n\":" + std::to_string(n) + "}",
                            n % 2 == 0 ? Durability::kAtSync : Durability::kBeforeReturn));
      if (n % 5 == 0) static_cast<void>(engine_->Sync());
      if (n == 500) (void)!write(started[1], "x", 1);  // writing on: the kill lands mid-way
    }
  }
  close(started[1]);
  char byte = 0;
  ASSERT_EQ(read(started[0], &byte, 1), 1);
  close(started[0]);
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  Reopen();
  std::map<std::pair<std::string, std::string>, uint64_t> logged;
  for (const Change& change : All()) logged[{change.twin, change.doc}] = change.version;
  ASSERT_FALSE(logged.empty());
  for (const auto& [key, version] : logged) {
    auto doc = engine_->Get(key.first, key.second);
    ASSERT_TRUE(doc.ok()) << key.first << "/" << key.second;
    EXPECT_EQ(doc->version, version) << key.first << "/" << key.second;
  }
}

}  // namespace
}  // namespace twins
