// The change log, history and watches of the engine over each real store (RocksDB, PostgreSQL),
// behind the write-behind cache as the plugin runs it.
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
#include "tests/support/store_backends.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using std::chrono::steady_clock;

class ChangeLogTest : public testing::TestWithParam<test::Backend> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(uint64_t changelog_bytes = 64 << 20) {
    engine_.reset();
    auto store = store_.Open(changelog_bytes);
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
  test::TestStore store_{GetParam(), dir_.sub("db")};
  size_t max_twins_ = 0;
  std::unique_ptr<Engine> engine_;
};

INSTANTIATE_TEST_SUITE_P(Store, ChangeLogTest, testing::Values(test::Backend::kRocksDb, test::Backend::kPostgres),
                         test::BackendName);

TEST_P(ChangeLogTest, EveryChangeIsLoggedWithAStrictlyIncreasingSeq) {
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

TEST_P(ChangeLogTest, RefusedWritesLogNothing) {
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  auto stale = ParseWriteRequest(R"({"version":7,"data":{}})", engine_->limits());
  EXPECT_FALSE(engine_->Put("a", "d", stale.value()).ok());
  EXPECT_FALSE(Put("a", "bad name", "{}").ok());
  EXPECT_FALSE(engine_->Delete("a", "missing", {}).ok());
  EXPECT_EQ(All().size(), 1u);
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  EXPECT_EQ(All().back().seq, 2u);  // no seq was spent on the refusals
}

TEST_P(ChangeLogTest, GroupCommittedChangesShowOnlyOnceSynced) {
  ASSERT_TRUE(Put("a", "d", R"({"n":1})", Durability::kAtSync).ok());
  EXPECT_TRUE(All().empty());
  EXPECT_EQ(engine_->WaitForChanges(0, steady_clock::now()), 0u);
  std::thread syncer([&] { EXPECT_TRUE(engine_->Sync().ok()); });
  EXPECT_EQ(engine_->WaitForChanges(0, steady_clock::now() + std::chrono::seconds(30)), 1u);
  syncer.join();
  EXPECT_EQ(All().size(), 1u);
}

TEST_P(ChangeLogTest, SeqGoesOnAfterAReopenAndDocumentsKeepTheirModifiedTime) {
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

TEST_P(ChangeLogTest, OldVersionsAreReadFromTheLogWhileItKeepsThem) {
  for (int n = 1; n <= 3; ++n) ASSERT_TRUE(Put("a", "d", R"({"n":)" + std::to_string(n) + "}").ok());
  EXPECT_EQ(engine_->GetVersion("a", "d", 1)->data, R"({"n":1})");
  EXPECT_EQ(engine_->GetVersion("a", "d", 3)->data, R"({"n":3})");
  auto future = engine_->GetVersion("a", "d", 9);
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(future.status().code(), Code::kNotFound);
  EXPECT_EQ(future.status().message(), "version 9 of this document does not exist yet; it is at 3");
  EXPECT_EQ(engine_->GetVersion("a", "bad name", 1).status().code(), Code::kInvalidArgument);
  // Deleted and made again: the versions the new one has not reached are not the old one's.
  ASSERT_TRUE(engine_->Delete("a", "d", {}).ok());
  ASSERT_TRUE(Put("a", "d", R"({"again":1})").ok());
  EXPECT_EQ(engine_->GetVersion("a", "d", 1)->data, R"({"again":1})");
  EXPECT_EQ(engine_->GetVersion("a", "d", 3).status().code(), Code::kNotFound);
}

TEST_P(ChangeLogTest, RetentionDropsTheOldestEntriesAndKeepsTheNewest) {
  Reopen(4096);
  const std::string big = R"({"pad":")" + std::string(400, 'x') + "\"}";
  // Retention drops whole files of the log, after a flush, in the background: write until it has.
  uint64_t written = 0;
  while (engine_->Changes().oldest <= 1 && written < 100000) {
    ASSERT_TRUE(Put("a", "d" + std::to_string(++written % 3), big).ok());
  }
  const ChangeBounds bounds = engine_->Changes();
  EXPECT_EQ(bounds.newest, written);
  EXPECT_GT(bounds.oldest, 1u);
  std::vector<Change> kept = All();
  ASSERT_FALSE(kept.empty());
  EXPECT_EQ(kept.front().seq, bounds.oldest);
  EXPECT_EQ(kept.back().seq, written);
  // What retention keeps: the bound in files, plus what the memtables (64 KiB each, at most two
  // while one is flushed) hold.
  size_t bytes = 0;
  for (const Change& change : kept) bytes += change.data.size() + 40;
  EXPECT_LE(bytes, 4096u + 3 * (64u << 10));
  // History follows retention: a dropped version is gone, with the oldest named.
  auto dropped = engine_->GetVersion("a", "d1", 1);
  ASSERT_FALSE(dropped.ok());
  EXPECT_NE(dropped.status().message().find("the oldest version retained is"), std::string::npos)
      << dropped.status().message();
  // Seq goes on across a reopen, whatever retention left.
  Reopen(4096);
  ASSERT_TRUE(Put("a", "d1", "{}").ok());
  EXPECT_EQ(All().back().seq, written + 1);
}

TEST_P(ChangeLogTest, WatchesAreKeptWithTheTwinAndBounded) {
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

TEST_P(ChangeLogTest, AnImportedStoreGoesOnAfterTheExportedSeq) {
  test::TempDir other_dir;
  const test::TestStore other(GetParam(), other_dir.sub("db"));
  {
    auto store = other.Open();
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->StartChangeLogAfter(41).ok());
    EXPECT_EQ((*store)->Changes().oldest, 42u);
    EXPECT_EQ((*store)->Changes().newest, 41u);
    ASSERT_TRUE((*store)->Sync().ok());
  }
  auto store = other.Open();
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_EQ((*store)->Changes().oldest, 42u);
  EXPECT_EQ((*store)->Changes().newest, 41u);
  Engine engine(WithWriteBehindCache(std::move(store).value(), 1 << 20), Limits());
  auto request = ParseWriteRequest(R"({"data":{}})", engine.limits());
  ASSERT_TRUE(engine.Put("a", "d", *request).ok());
  auto changes = engine.ReadChanges(0, 10, 1 << 20);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].seq, 42u);

  // Only a log that never had an entry starts after a seq.
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  engine_.reset();
  auto used = store_.Open();
  ASSERT_TRUE(used.ok());
  EXPECT_FALSE((*used)->StartChangeLogAfter(100).ok());
  EXPECT_EQ((*used)->Changes().newest, 1u);
}

// A crash never keeps a document without its log entry, or the reverse: a child process
// writes until it is killed, then every document's version is its last logged change's.
TEST_P(ChangeLogTest, AKilledWriterLeavesDocumentsAndTheLogInAgreement) {
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
  ASSERT_TRUE(store_.AwaitKilledWriter());
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

// A watch is stored with its twin, so a twin with watches and no document is a twin for
// max_twins: else any client could store watches under ever new twins, beyond the bound on
// what a twin holds times max_twins.
TEST_P(ChangeLogTest, AWatchedTwinCountsAgainstMaxTwins) {
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
TEST_P(ChangeLogTest, ATrimIsSeenInTheBoundsByAReaderThatMissedItsEntries) {
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

}  // namespace
}  // namespace twins
