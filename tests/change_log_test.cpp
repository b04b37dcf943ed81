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
#include "store/rocksdb_store.hpp"
#include "tests/support/broken_store.hpp"
#include "tests/support/power_cut_fs.hpp"
#include "tests/support/store_backends.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using std::chrono::steady_clock;

class ChangeLogTest : public testing::TestWithParam<test::Backend> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(uint64_t changelog_bytes = 64 << 20) {
    batches_.reset();
    engine_.reset();
    auto store = store_.Open(changelog_bytes);
    ASSERT_TRUE(store.ok()) << store.status().message();
    std::unique_ptr<DocumentStore> opened = std::move(store).value();
    if (failing_syncs_) {
      auto failing = std::make_unique<test::SyncFailingStore>(std::move(opened));
      failing_ = failing.get();
      opened = std::move(failing);
    }
    Limits limits;
    limits.max_documents = 4;
    limits.max_twins = max_twins_;
    // The shared store reads the database in each batch: no cache in front of it.
    auto engine_store = store_.backend() == test::Backend::kPostgresBatched
                            ? std::move(opened)
                            : WithWriteBehindCache(std::move(opened), 1 << 20);
    engine_ = std::make_unique<Engine>(std::move(engine_store), limits);
    ASSERT_TRUE(engine_->start_status().ok()) << engine_->start_status().message();
    batches_ = store_.Attach(*engine_);
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
  bool failing_syncs_ = false;                 // the store behind a SyncFailingStore, failing_
  test::SyncFailingStore* failing_ = nullptr;  // owned by engine_
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<BatchThread> batches_;  // before the engine
};

INSTANTIATE_TEST_SUITE_P(Store, ChangeLogTest,
                         testing::Values(test::Backend::kRocksDb, test::Backend::kPostgres,
                                         test::Backend::kPostgresBatched),
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
  if (GetParam() == test::Backend::kPostgresBatched) {
    // Every call returns once its batch committed, whatever durability it asked for.
    EXPECT_EQ(All().size(), 1u);
    EXPECT_EQ(engine_->WaitForChanges(0, steady_clock::now()), 1u);
    return;
  }
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
  Engine engine(GetParam() == test::Backend::kPostgresBatched ? std::move(store).value()
                                                              : WithWriteBehindCache(std::move(store).value(), 1 << 20),
                Limits());
  auto batches = other.Attach(engine);
  auto request = ParseWriteRequest(R"({"data":{}})", engine.limits());
  ASSERT_TRUE(engine.Put("a", "d", *request).ok());
  auto changes = engine.ReadChanges(0, 10, 1 << 20);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].seq, 42u);

  // Only a log that never had an entry starts after a seq.
  ASSERT_TRUE(Put("a", "d", "{}").ok());
  batches_.reset();
  engine_.reset();
  auto used = store_.Open();
  ASSERT_TRUE(used.ok());
  EXPECT_FALSE((*used)->StartChangeLogAfter(100).ok());
  EXPECT_EQ((*used)->Changes().newest, 1u);
}

// A watch or unwatch is answered once the Sync after it made it durable; when that Sync fails
// the device is told so, and it must not take effect: no pushes for a watch that failed, the
// pushes go on for a watch whose unwatch failed. Those the Syncs before made durable stay.
TEST_P(ChangeLogTest, WatchesAndUnwatchesWhoseSyncFailsAreUndone) {
  // The batch thread owns the shared store's transactions: a Sync failed in front of it
  // would leave one open. There every call is durable in its batch, undone the same way.
  if (GetParam() == test::Backend::kPostgresBatched) GTEST_SKIP() << "Sync fails only in a batch";
  failing_syncs_ = true;
  max_twins_ = 4;
  Reopen();
  ASSERT_TRUE(engine_->Watch("a", "kept", "c1", "1me", Durability::kAtSync).ok());
  ASSERT_TRUE(engine_->Watch("a", "rewatched", "c1", "0old", Durability::kAtSync).ok());
  ASSERT_TRUE(engine_->Watch("b", "ended", "c2", "1me", Durability::kAtSync).ok());
  ASSERT_TRUE(engine_->Sync().ok());
  ASSERT_TRUE(Put("a", "d", "{}").ok());  // a later seq: a watch made now has another `since`
  const std::vector<WatchRecord> rewatched = engine_->Watches("a", "rewatched");
  ASSERT_EQ(rewatched.size(), 1u);
  EXPECT_EQ(engine_->twins(), 2u);

  failing_->fail_syncs = true;
  ASSERT_TRUE(engine_->Watch("a", "new", "c1", "1me", Durability::kAtSync).ok());
  ASSERT_TRUE(engine_->Watch("a", "rewatched", "c1", "1new", Durability::kAtSync).ok());
  ASSERT_TRUE(engine_->Unwatch("b", "ended", "c2", Durability::kAtSync).ok());
  EXPECT_EQ(engine_->twins(), 1u);  // b has neither documents nor watches for now
  EXPECT_EQ(engine_->Sync().code(), Code::kInsufficientStorage);

  EXPECT_FALSE(engine_->IsWatched("a", "new"));
  const std::vector<WatchRecord> restored = engine_->Watches("a", "rewatched");
  ASSERT_EQ(restored.size(), 1u);
  EXPECT_EQ(restored[0].value, "0old");
  EXPECT_EQ(restored[0].since, rewatched[0].since);
  const std::vector<WatchRecord> ended = engine_->Watches("b", "ended");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0].watcher, "c2");
  EXPECT_TRUE(engine_->IsWatched("a", "kept"));
  EXPECT_EQ(engine_->twins(), 2u);

  // Undone once: the next Sync covers nothing of it, and the count of watches is right.
  failing_->fail_syncs = false;
  ASSERT_TRUE(engine_->Writable().ok());  // the store recovered
  ASSERT_TRUE(engine_->Sync().ok());
  EXPECT_TRUE(engine_->IsWatched("b", "ended"));
  for (const char* doc : {"kept", "rewatched"}) ASSERT_TRUE(engine_->Unwatch("a", doc, "c1").ok());
  EXPECT_TRUE(engine_->HasWatches());
  ASSERT_TRUE(engine_->Unwatch("b", "ended", "c2").ok());
  EXPECT_FALSE(engine_->HasWatches());
  EXPECT_EQ(engine_->twins(), 1u);
}

// Durable before it returns: a watch or unwatch whose own Sync fails returns that error, undone.
TEST_P(ChangeLogTest, AWatchOrUnwatchWhoseOwnSyncFailsReturnsTheErrorUndone) {
  if (GetParam() == test::Backend::kPostgresBatched) GTEST_SKIP() << "Sync fails only in a batch";
  failing_syncs_ = true;
  Reopen();
  ASSERT_TRUE(engine_->Watch("a", "ended", "c1", "1me").ok());
  failing_->fail_syncs = true;
  EXPECT_EQ(engine_->Watch("a", "new", "c1", "1me").status().code(), Code::kInsufficientStorage);
  EXPECT_FALSE(engine_->IsWatched("a", "new"));
  EXPECT_EQ(engine_->Unwatch("a", "ended", "c1").code(), Code::kInsufficientStorage);
  EXPECT_TRUE(engine_->IsWatched("a", "ended"));
  failing_->fail_syncs = false;
  ASSERT_TRUE(engine_->Writable().ok());
  ASSERT_TRUE(engine_->Unwatch("a", "ended", "c1").ok());
  EXPECT_FALSE(engine_->HasWatches());
}

// A crash never keeps a document without its log entry, or the reverse: a child process
// writes until it is killed, then every document's version is its last logged change's.
TEST_P(ChangeLogTest, AKilledWriterLeavesDocumentsAndTheLogInAgreement) {
  batches_.reset();  // no thread may run across the fork
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
  // PostgreSQL commits each write (a few hundred a second here): fewer writes, still hundreds
  // of trims past a 2 KiB bound.
  const int writes = GetParam() == test::Backend::kRocksDb ? 50000 : 2000;
  std::thread writer([&] {
    for (int n = 0; n < writes && !stop.load(); ++n) {
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

// Without sync_writes, a change is shown (change stream, event feed) once its Sync() wrote it
// to the log, before the log is on the disk: a power cut may take it back. Its seq must never
// be given again, or a reader resuming after it would skip the change that takes it over.
// The cut is RocksDB's file system cutting every file back to what was fsynced.
class PowerCutTest : public testing::Test {
 protected:
  std::unique_ptr<Engine> Open(const std::string& path, bool sync_writes = false) {
    RocksDbOptions options;
    options.path = path;
    options.sync_writes = sync_writes;
    auto store = OpenRocksDbStore(options, env_.get());
    EXPECT_TRUE(store.ok()) << store.status().message();
    if (!store.ok()) return nullptr;
    return std::make_unique<Engine>(WithWriteBehindCache(std::move(store).value(), 1 << 20), Limits());
  }

  // `count` puts as the broker makes them (group commit, a Sync() every 16); the newest seq a
  // reader has then seen.
  static uint64_t WriteAndShow(Engine& engine, int count) {
    auto request = ParseWriteRequest(R"({"data":{"n":1}})", engine.limits());
    for (int n = 1; n <= count; ++n) {
      EXPECT_TRUE(engine.Put("t" + std::to_string(n % 5), "d", request.value(), Durability::kAtSync).ok());
      if (n % 16 == 0 || n == count) {
        EXPECT_TRUE(engine.Sync().ok());
      }
    }
    return LastLogged(engine);
  }

  static uint64_t LastLogged(const Engine& engine) {
    auto changes = engine.ReadChanges(0, 1 << 20, 1 << 30);
    EXPECT_TRUE(changes.ok());
    return changes.ok() && !changes->empty() ? changes->back().seq : 0;
  }

  test::TempDir dir_;
  std::shared_ptr<test::PowerCutFileSystem> fs_ = std::make_shared<test::PowerCutFileSystem>();
  std::unique_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
};

TEST_F(PowerCutTest, SeqsShownBeforeAPowerCutAreNeverGivenAgain) {
  auto engine = Open(dir_.sub("db"));
  const uint64_t shown = WriteAndShow(*engine, 100);
  ASSERT_EQ(shown, 100u);
  fs_->CopyAfterPowerCut(dir_.sub("db"), dir_.sub("cut1"));

  std::unique_ptr<Engine> after = Open(dir_.sub("cut1"));
  ASSERT_NE(after, nullptr);
  EXPECT_LT(LastLogged(*after), shown) << "the cut took nothing back: this test proves nothing";
  EXPECT_GE(after->Changes().newest, shown);
  // A clean close after it keeps the seqs skipped, and so does a second cut.
  after.reset();
  engine = Open(dir_.sub("cut1"));
  ASSERT_NE(engine, nullptr);
  EXPECT_GE(engine->Changes().newest, shown);
  const uint64_t shown_again = WriteAndShow(*engine, 20);
  EXPECT_GT(shown_again, shown + 19);
  fs_->CopyAfterPowerCut(dir_.sub("cut1"), dir_.sub("cut2"));

  engine.reset();
  engine = Open(dir_.sub("cut2"));
  ASSERT_NE(engine, nullptr);
  EXPECT_LT(LastLogged(*engine), shown_again);
  EXPECT_GT(WriteAndShow(*engine, 1), shown_again);
}

// The twin: fsynced writes lose nothing shown, so nothing is skipped; a clean close neither.
TEST_F(PowerCutTest, WithSyncWritesOrACleanCloseSeqGoesOnWithoutAGap) {
  auto engine = Open(dir_.sub("db"), true);
  ASSERT_EQ(WriteAndShow(*engine, 100), 100u);
  fs_->CopyAfterPowerCut(dir_.sub("db"), dir_.sub("cut"));
  engine = Open(dir_.sub("cut"), true);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(LastLogged(*engine), 100u);
  EXPECT_EQ(WriteAndShow(*engine, 1), 101u);

  engine.reset();
  engine = Open(dir_.sub("db"));
  ASSERT_EQ(WriteAndShow(*engine, 10), 110u);
  engine.reset();
  engine = Open(dir_.sub("db"));
  EXPECT_EQ(WriteAndShow(*engine, 1), 111u);
}

// What the guarantee costs: a small fsync, of the reserved seq alone, for a block of 65536
// changes; the write-ahead log is not fsynced for it.
TEST_F(PowerCutTest, WithoutSyncWritesSeqsCostOneSmallFsyncPerBlockOfChanges) {
  auto engine = Open(dir_.sub("db"));
  const uint64_t before = fs_->in_place_syncs(), log_before = fs_->log_syncs();
  ASSERT_EQ(WriteAndShow(*engine, 8192), 8192u);
  EXPECT_EQ(fs_->in_place_syncs() - before, 1u);  // at the first batch
  EXPECT_EQ(fs_->log_syncs() - log_before, 0u);
}

}  // namespace
}  // namespace twins
