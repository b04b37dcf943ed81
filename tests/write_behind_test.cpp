// The cache and write queue in front of the store. The store behind it here is an in-memory
// one that counts its calls and can be made to fail: what is checked is what reaches it, and
// when. tests/rocksdb_store_test and engine_test run the same layer over real RocksDB.
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "store/document_store.hpp"

namespace twins {
namespace {

class MemoryStore : public DocumentStore {
 public:
  struct Shared {
    std::mutex mutex;
    std::map<std::pair<std::string, std::string>, StoredDocument> documents;
    std::vector<size_t> batches;  // size of each Write call
    int gets = 0;
    int syncs = 0;
    bool failing = false;       // Write fails
    bool failing_sync = false;  // Sync fails
    bool unwritable = false;    // Writable refuses, as a store that has not recovered yet
    // When set, Get reads, then waits until `release` before returning.
    bool hold_gets = false;
    bool holding = false;
    bool release = false;
    // When set, Write and Sync wait until theirs is released, before doing anything.
    bool hold_writes = false, writing = false, release_writes = false;
    bool hold_syncs = false, syncing = false, release_syncs = false;
    std::condition_variable changed;

    // Waits, from the test's thread, until `flag` is true.
    void WaitFor(const bool& flag) {
      std::unique_lock<std::mutex> lock(mutex);
      changed.wait(lock, [&] { return flag; });
    }
    void Set(bool& flag) {
      std::lock_guard<std::mutex> lock(mutex);
      flag = true;
      changed.notify_all();
    }
    // In the store's call: says it is in, and waits for its release.
    void Hold(std::unique_lock<std::mutex>& lock, bool hold, bool& in, const bool& released) {
      if (!hold) return;
      in = true;
      changed.notify_all();
      changed.wait(lock, [&] { return released; });
    }
  };

  explicit MemoryStore(Shared* shared) : shared_(*shared) {}

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    std::unique_lock<std::mutex> lock(shared_.mutex);
    ++shared_.gets;
    std::optional<StoredDocument> found;
    auto it = shared_.documents.find({std::string(twin), std::string(doc)});
    if (it != shared_.documents.end()) found = it->second;
    if (shared_.hold_gets) {
      shared_.holding = true;
      shared_.changed.notify_all();
      shared_.changed.wait(lock, [&] { return shared_.release; });
    }
    return found;
  }
  Status Write(std::vector<DocumentWrite> writes) override {
    std::unique_lock<std::mutex> lock(shared_.mutex);
    shared_.Hold(lock, shared_.hold_writes, shared_.writing, shared_.release_writes);
    shared_.batches.push_back(writes.size());
    if (shared_.failing) return Status::Internal("IO error: disk on fire");
    for (DocumentWrite& write : writes) {
      if (write.document) {
        shared_.documents[{write.twin, write.doc}] = *write.document;
      } else {
        shared_.documents.erase({write.twin, write.doc});
      }
    }
    return Status::Ok();
  }
  Result<std::vector<std::string>> List(std::string_view twin) const override {
    std::lock_guard<std::mutex> lock(shared_.mutex);
    std::vector<std::string> names;
    for (const auto& [key, document] : shared_.documents) {
      if (key.first == twin) names.push_back(key.second);
    }
    return names;
  }
  Status DeleteAll(std::string_view twin) override {
    std::lock_guard<std::mutex> lock(shared_.mutex);
    if (shared_.failing) return Status::Internal("IO error: disk on fire");
    for (auto it = shared_.documents.begin(); it != shared_.documents.end();) {
      it = it->first.first == twin ? shared_.documents.erase(it) : std::next(it);
    }
    return Status::Ok();
  }
  Status Writable(bool) override {
    std::lock_guard<std::mutex> lock(shared_.mutex);
    return shared_.unwritable ? Status::Internal("IO error: still on fire") : Status::Ok();
  }
  Status Sync() override {
    std::unique_lock<std::mutex> lock(shared_.mutex);
    shared_.Hold(lock, shared_.hold_syncs, shared_.syncing, shared_.release_syncs);
    ++shared_.syncs;
    return shared_.failing_sync ? Status::Internal("IO error: log write failed") : Status::Ok();
  }

 private:
  Shared& shared_;
};

class WriteBehindTest : public testing::Test {
 protected:
  void Open(size_t capacity_bytes = 1 << 20) {
    store_ = WithWriteBehindCache(std::make_unique<MemoryStore>(&backend_), capacity_bytes);
  }
  std::optional<StoredDocument> Read(const char* twin, const char* doc) {
    auto got = store_->Get(twin, doc);
    EXPECT_TRUE(got.ok()) << got.status().message();
    return got.ok() ? *got : std::nullopt;
  }
  size_t StoredCount() {
    std::lock_guard<std::mutex> lock(backend_.mutex);
    return backend_.documents.size();
  }

  MemoryStore::Shared backend_;
  std::unique_ptr<DocumentStore> store_;
};

TEST_F(WriteBehindTest, ReadsSeeQueuedWritesAndSyncAppliesThemInOneBatch) {
  Open();
  ASSERT_TRUE(store_->Put("t", "a", {1, R"({"x":1})"}).ok());
  ASSERT_TRUE(store_->Put("t", "a", {2, R"({"x":2})"}).ok());
  ASSERT_TRUE(store_->Put("t", "b", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Delete("t", "b").ok());
  EXPECT_TRUE(backend_.batches.empty());
  EXPECT_EQ(Read("t", "a")->data, R"({"x":2})");
  EXPECT_FALSE(Read("t", "b").has_value());
  EXPECT_EQ(backend_.gets, 0);

  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(backend_.batches, std::vector<size_t>{4});
  EXPECT_EQ(backend_.syncs, 1);
  EXPECT_EQ(StoredCount(), 1u);
  EXPECT_EQ(backend_.documents.at({"t", "a"}).version, 2u);
  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(backend_.batches.size(), 1u);  // nothing new to write
}

TEST_F(WriteBehindTest, ListAndDeleteAllSeeQueuedWrites) {
  Open();
  ASSERT_TRUE(store_->Put("t", "b", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Put("t", "a", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Put("u", "a", {1, "{}"}).ok());
  EXPECT_EQ(*store_->List("t"), (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(store_->DeleteAll("t").ok());
  EXPECT_TRUE(store_->List("t")->empty());
  EXPECT_FALSE(Read("t", "a").has_value());
  EXPECT_TRUE(Read("u", "a").has_value());
}

TEST_F(WriteBehindTest, DestructionAppliesWhatIsQueued) {
  Open();
  ASSERT_TRUE(store_->Put("t", "a", {1, "{}"}).ok());
  store_.reset();
  EXPECT_EQ(StoredCount(), 1u);
}

TEST_F(WriteBehindTest, ALongQueueIsAppliedWithoutWaitingForSync) {
  Open();
  for (int i = 0; i < 1024; ++i) ASSERT_TRUE(store_->Put("t", "d" + std::to_string(i), {1, "{}"}).ok());
  EXPECT_EQ(backend_.batches, std::vector<size_t>{1024});
  EXPECT_EQ(backend_.syncs, 0);  // applied, not made durable: that stays Sync()'s job
}

TEST_F(WriteBehindTest, QueuedDocumentsStayReadableBeyondCapacityAndAreEvictedOnceStored) {
  Open(16 * 2048);  // 16 shards of 2 KiB: about one 1 KiB document each
  const std::string kilobyte = "{\"v\":\"" + std::string(1000, 'x') + "\"}";
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(store_->Put("t" + std::to_string(i), "d", {1, kilobyte}).ok());
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(store_->Get("t" + std::to_string(i), "d")->has_value());
  EXPECT_EQ(backend_.gets, 0);

  ASSERT_TRUE(store_->Sync().ok());
  for (int i = 0; i < 64; ++i) EXPECT_TRUE(store_->Get("t" + std::to_string(i), "d")->has_value());
  EXPECT_GT(backend_.gets, 32);
}

TEST_F(WriteBehindTest, AReadOverlappingAWriteDoesNotCacheWhatItRead) {
  Open();
  ASSERT_TRUE(store_->Put("t", "a", {1, "old"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  store_.reset();  // a fresh cache, so that the next read goes to the store
  Open();
  backend_.hold_gets = true;
  std::optional<StoredDocument> seen;
  std::thread reader([&] { seen = Read("t", "a"); });
  {
    std::unique_lock<std::mutex> lock(backend_.mutex);
    backend_.changed.wait(lock, [&] { return backend_.holding; });
  }
  // The reader has read "old" from the store and waits; a deletion lands and is stored
  // meanwhile, leaving no entry behind that would stop the reader's insert by itself.
  ASSERT_TRUE(store_->Delete("t", "a").ok());
  ASSERT_TRUE(store_->Sync().ok());
  {
    std::lock_guard<std::mutex> lock(backend_.mutex);
    backend_.hold_gets = false;
    backend_.release = true;
  }
  backend_.changed.notify_all();
  reader.join();
  EXPECT_EQ(seen->data, "old");
  EXPECT_FALSE(Read("t", "a").has_value());
}

TEST_F(WriteBehindTest, AFailedBatchRefusesWritesUntilTheStoreIsWritableAgain) {
  Open();
  ASSERT_TRUE(store_->Put("t", "kept", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  backend_.failing = true;
  ASSERT_TRUE(store_->Put("t", "lost", {1, "{}"}).ok());  // queued: the store has not refused it yet
  EXPECT_TRUE(Read("t", "lost").has_value());

  Status synced = store_->Sync();
  EXPECT_EQ(synced.code(), Code::kInternal);
  EXPECT_EQ(synced.message(), "IO error: disk on fire");
  EXPECT_FALSE(Read("t", "lost").has_value());  // reads show what the store holds
  EXPECT_TRUE(Read("t", "kept").has_value());
  auto names = store_->List("t");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, std::vector<std::string>{"kept"});

  backend_.failing = false;
  backend_.unwritable = true;  // the store has not recovered: the failure stands
  EXPECT_EQ(store_->Writable(true).message(), "IO error: still on fire");
  EXPECT_EQ(store_->Put("t", "later", {1, "{}"}).message(), synced.message());
  EXPECT_EQ(store_->Sync().message(), synced.message());
  EXPECT_EQ(StoredCount(), 1u);

  backend_.unwritable = false;  // recovered: the next check lets writes through again
  EXPECT_TRUE(store_->Writable(true).ok());
  ASSERT_TRUE(store_->Put("t", "later", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  EXPECT_EQ(StoredCount(), 2u);
  EXPECT_TRUE(Read("t", "later").has_value());
}

TEST_F(WriteBehindTest, AFailedSyncRefusesWritesToo) {
  Open();
  backend_.failing_sync = true;
  ASSERT_TRUE(store_->Put("t", "a", {1, "{}"}).ok());
  EXPECT_EQ(store_->Sync().message(), "IO error: log write failed");
  EXPECT_FALSE(store_->Put("t", "b", {1, "{}"}).ok());
  EXPECT_EQ(backend_.batches, std::vector<size_t>{1});
}

TEST_F(WriteBehindTest, AFailedDeleteAllRefusesWritesToo) {
  Open();
  ASSERT_TRUE(store_->Put("t", "a", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  backend_.failing = true;
  EXPECT_EQ(store_->DeleteAll("t").message(), "IO error: disk on fire");
  backend_.failing = false;
  EXPECT_FALSE(store_->Put("t", "b", {1, "{}"}).ok());
  EXPECT_FALSE(store_->Sync().ok());
  EXPECT_EQ(backend_.syncs, 1);  // a failed store is not synced again before Writable() says so
}

// Writes queued behind a failed batch fail with it: they never reach the store once it is
// writable again.
TEST_F(WriteBehindTest, WritesQueuedBehindAFailureAreDroppedNotWrittenLater) {
  Open();
  backend_.failing_sync = true;
  ASSERT_TRUE(store_->Put("t", "a", {1, "{}"}).ok());
  EXPECT_FALSE(store_->Sync().ok());
  backend_.failing_sync = false;
  EXPECT_TRUE(store_->Writable(true).ok());
  ASSERT_TRUE(store_->Put("t", "b", {1, "{}"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  auto names = store_->List("t");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));  // a's batch was written, its sync failed
  EXPECT_EQ(backend_.batches, (std::vector<size_t>{1, 1}));
}

// One thread's store sync fails while another's batch is being written: what a read finds in
// the store meanwhile may be cached, but not past the batch's landing, so reads then show the
// batch, and the cache serves the right document again.
TEST_F(WriteBehindTest, AFailureDuringAnotherThreadsBatchLeavesNoStaleEntry) {
  Open(16 * 4096);
  ASSERT_TRUE(store_->Put("t", "d", {1, "v1"}).ok());
  ASSERT_TRUE(store_->Sync().ok());
  store_.reset();  // a fresh cache over the stored v1
  Open(16 * 4096);

  backend_.hold_syncs = true;
  backend_.failing_sync = true;
  std::thread failing_sync([&] { EXPECT_FALSE(store_->Sync().ok()); });  // nothing queued: straight to the store
  backend_.WaitFor(backend_.syncing);
  {
    std::lock_guard<std::mutex> lock(backend_.mutex);
    backend_.hold_syncs = false;
    backend_.hold_writes = true;
  }
  ASSERT_TRUE(store_->Put("t", "d", {2, "v2"}).ok());
  std::thread writer([&] { static_cast<void>(store_->Sync()); });
  backend_.WaitFor(backend_.writing);  // v2's batch is in the store's hands, not yet written
  backend_.Set(backend_.release_syncs);
  failing_sync.join();  // the failure dropped the cache, v2's pinned entry with it

  EXPECT_EQ(Read("t", "d")->version, 1u);  // the store's truth at this moment
  backend_.Set(backend_.release_writes);
  writer.join();
  EXPECT_EQ(Read("t", "d")->version, 2u);
  const int gets = backend_.gets;
  EXPECT_EQ(Read("t", "d")->version, 2u);
  EXPECT_EQ(backend_.gets, gets);  // cached again, and right
}

}  // namespace
}  // namespace twins
