#include <array>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <unordered_map>

#include "store/document_store.hpp"

namespace twins {
namespace {

// What one cache entry costs besides its key and text: list node, hash node, headers.
constexpr size_t kEntryOverhead = 160;
// A queue this long is applied by the write that fills it rather than left to Sync(): bounds
// its memory when the caller syncs rarely.
constexpr size_t kMaxQueuedWrites = 1024;
constexpr size_t kMaxQueuedBytes = 4 << 20;

class WriteBehindStore final : public DocumentStore {
 public:
  WriteBehindStore(std::unique_ptr<DocumentStore> store, size_t capacity_bytes)
      : store_(std::move(store)), shard_capacity_(capacity_bytes / kShards) {}

  ~WriteBehindStore() override {
    static_cast<void>(Drain());  // a failure was reported to whoever synced; nobody is left to tell
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    const std::string key = Key(twin, doc);
    Shard& shard = ShardOf(twin);
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(shard.mutex);
      auto found = shard.index.find(key);
      if (found != shard.index.end()) {
        Bump(shard.hits);
        shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
        return found->second->document;
      }
      Bump(shard.misses);
      generation = shard.generation;
    }
    // A write that lands while the store is read bumps the generation: what was read may then
    // be older than the cache must be, so it is not kept.
    auto stored = store_->Get(twin, doc);
    if (stored.ok()) {
      std::lock_guard<std::mutex> lock(shard.mutex);
      if (shard.generation == generation && shard.index.count(key) == 0) Insert(shard, key, *stored, 0);
    }
    return stored;
  }

  Status Write(std::vector<DocumentWrite> writes) override {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    if (!failure_.ok()) return failure_;
    // The cache is updated under the queue lock so that a failure, which empties the cache
    // under the same lock, never leaves a write of the failed store behind in it.
    for (const DocumentWrite& write : writes) {
      const std::string key = Key(write.twin, write.doc);
      Shard& shard = ShardOf(write.twin);
      std::lock_guard<std::mutex> shard_lock(shard.mutex);
      ++shard.generation;
      auto found = shard.index.find(key);
      if (found == shard.index.end()) {
        Insert(shard, key, write.document, 1);
        continue;
      }
      Entry& entry = *found->second;
      shard.bytes += Cost(write.document) - Cost(entry.document);
      entry.document = write.document;  // reuses the string's buffer
      ++entry.pending;
      shard.lru.splice(shard.lru.begin(), shard.lru, found->second);
      Trim(shard);
    }
    for (DocumentWrite& write : writes) {
      queued_bytes_ += Cost(write);
      queue_.push_back(std::move(write));
    }
    enqueued_ += writes.size();
    const bool full = queue_.size() >= kMaxQueuedWrites || queued_bytes_ >= kMaxQueuedBytes;
    lock.unlock();
    return full ? Drain() : Status::Ok();
  }

  Result<std::vector<std::string>> List(std::string_view twin) const override {
    // Queued creations and deletions must show. A failed batch is dropped: the store is right.
    static_cast<void>(Drain());
    return store_->List(twin);
  }

  Status Writable(bool grows) override {
    Status s = store_->Writable(grows);
    if (s.ok() && failed_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(queue_mutex_);
      failure_ = Status::Ok();
      failed_.store(false, std::memory_order_release);
    }
    return s;
  }

  Result<uint64_t> CountTwins() const override {
    static_cast<void>(Drain());
    return store_->CountTwins();
  }

  Result<ContentCounts> CountContents() const override { return store_->CountContents(); }

  // The change log and the watches are not cached: callers read only what Sync() made durable.
  ChangeBounds Changes() const override { return store_->Changes(); }
  Status StartChangeLogAfter(uint64_t seq) override { return store_->StartChangeLogAfter(seq); }
  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    return store_->ReadChanges(after, max_count, max_bytes);
  }
  Result<std::optional<Change>> FindVersion(std::string_view twin, std::string_view doc,
                                            uint64_t version) const override {
    return store_->FindVersion(twin, doc, version);
  }
  Result<uint64_t> OldestVersion(std::string_view twin, std::string_view doc) const override {
    return store_->OldestVersion(twin, doc);
  }
  Status PutWatch(const WatchRecord& watch) override { return store_->PutWatch(watch); }
  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    return store_->DeleteWatch(twin, doc, watcher);
  }
  Result<std::vector<WatchRecord>> ListWatches() const override { return store_->ListWatches(); }

  StoreStats Stats() const override {
    StoreStats stats = store_->Stats();
    for (const Shard& shard : shards_) {
      stats.cache_hits += shard.hits.load(std::memory_order_relaxed);
      stats.cache_misses += shard.misses.load(std::memory_order_relaxed);
    }
    return stats;
  }

  Status DeleteAll(std::string_view twin) override {
    Status s = Drain();
    if (s.ok()) {
      s = store_->DeleteAll(twin);
      if (!s.ok()) s = FailNow(s);
    }
    const std::string prefix = Key(twin, "");
    Shard& shard = ShardOf(twin);
    std::lock_guard<std::mutex> lock(shard.mutex);
    ++shard.generation;
    for (auto it = shard.lru.begin(); it != shard.lru.end();) {
      auto next = std::next(it);
      if (it->pending == 0 && it->key.compare(0, prefix.size(), prefix) == 0) Erase(shard, it);
      it = next;
    }
    return s;
  }

  Status Sync() override {
    Status s = Drain();
    if (!s.ok()) return s;
    s = store_->Sync();
    return s.ok() ? s : FailNow(s);
  }

 private:
  static constexpr size_t kShards = 16;

  struct Entry {
    std::string key;
    std::optional<StoredDocument> document;  // nullopt: deleted, the deletion still queued
    size_t pending = 0;                      // queued writes of this document: never evicted
  };
  // A twin's documents share one shard, so that DeleteAll finds them all in one place.
  struct Shard {
    std::mutex mutex;
    std::list<Entry> lru;                                                    // most recently used first
    std::unordered_map<std::string_view, std::list<Entry>::iterator> index;  // views of Entry::key
    size_t bytes = 0;
    uint64_t generation = 0;
    // Written under `mutex` only, so a plain load and store count; read from any thread.
    std::atomic<uint64_t> hits{0};
    std::atomic<uint64_t> misses{0};
  };

  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  static std::string Key(std::string_view twin, std::string_view doc) {
    std::string key(twin);
    key += '\0';
    key += doc;
    return key;
  }
  static size_t Cost(const std::optional<StoredDocument>& document) { return document ? document->data.size() : 0; }
  static size_t Cost(const DocumentWrite& write) {
    return Cost(write.document) + (write.change ? write.change->data.size() + 64 : 0);
  }
  static size_t Cost(const Entry& entry) { return entry.key.size() + Cost(entry.document) + kEntryOverhead; }

  Shard& ShardOf(std::string_view twin) const { return shards_[std::hash<std::string_view>()(twin) % kShards]; }

  void Insert(Shard& shard, const std::string& key, const std::optional<StoredDocument>& document,
              size_t pending) const {
    shard.lru.push_front(Entry{key, document, pending});
    shard.bytes += Cost(shard.lru.front());
    shard.index.emplace(shard.lru.front().key, shard.lru.begin());
    Trim(shard);
  }

  void Trim(Shard& shard) const {
    for (auto it = shard.lru.end(); shard.bytes > shard_capacity_ && it != shard.lru.begin();) {
      --it;
      if (it->pending == 0) it = Erase(shard, it);
    }
  }

  static std::list<Entry>::iterator Erase(Shard& shard, std::list<Entry>::iterator entry) {
    shard.bytes -= Cost(*entry);
    shard.index.erase(entry->key);
    return shard.lru.erase(entry);
  }

  // Applies one batch taken from the queue; the caller holds queue_mutex_ through `lock`
  // and has set applying_.
  void Apply(std::unique_lock<std::mutex>& lock) const {
    std::vector<DocumentWrite> batch;
    batch.swap(queue_);
    queue_.reserve(batch.size());  // the next loop pass brings about as many
    queued_bytes_ = 0;
    Status s = failure_;  // a failed store is not written again before it recovers
    const uint64_t failures = failures_;
    lock.unlock();
    if (s.ok()) s = store_->Write(batch);
    lock.lock();
    // A failure meanwhile (another thread's Sync) emptied the cache, this batch's entries too.
    const bool dropped = failures != failures_;
    for (const DocumentWrite& write : batch) {
      Shard& shard = ShardOf(write.twin);
      std::lock_guard<std::mutex> shard_lock(shard.mutex);
      // A read that began before the batch reached the store must not cache what it read.
      ++shard.generation;
      auto found = shard.index.find(Key(write.twin, write.doc));
      if (found == shard.index.end()) continue;
      if (dropped) {
        // An entry read back since may hold what the store had before the batch reached it;
        // one with writes pending is a later write's.
        if (found->second->pending == 0) Erase(shard, found->second);
        continue;
      }
      Entry& entry = *found->second;
      if (--entry.pending == 0 && !entry.document) Erase(shard, found->second);
      Trim(shard);  // what was held for the queue may go now
    }
    if (!s.ok()) Fail(s);
    applied_ += batch.size();
    applying_ = false;
    applied_cv_.notify_all();
  }

  // Called with queue_mutex_ held. The store's status stands for every write until
  // Writable() finds the store writable again.
  void Fail(const Status& cause) const {
    if (!failure_.ok()) return;
    failure_ = cause;
    ++failures_;
    failed_ = true;
    // Writes queued behind the failed one fail with it (their Sync() reports the failure);
    // kept, they would reach the store after it recovered.
    applied_ += queue_.size();
    queue_.clear();
    queued_bytes_ = 0;
    applied_cv_.notify_all();
    for (Shard& shard : shards_) {
      std::lock_guard<std::mutex> shard_lock(shard.mutex);
      ++shard.generation;
      shard.lru.clear();
      shard.index.clear();
      shard.bytes = 0;
    }
  }

  Status FailNow(const Status& cause) const {
    std::lock_guard<std::mutex> lock(queue_mutex_);
    Fail(cause);
    return failure_;
  }

  // Waits until every write queued before the call is in the store, applying them itself
  // when no other caller (a write that filled the queue, another Sync) is already at it.
  Status Drain() const {
    std::unique_lock<std::mutex> lock(queue_mutex_);
    const uint64_t target = enqueued_;
    while (applied_ < target) {
      if (!applying_) {
        applying_ = true;
        Apply(lock);
      } else {
        applied_cv_.wait(lock);
      }
    }
    return failure_;
  }

  std::unique_ptr<DocumentStore> store_;
  const size_t shard_capacity_;
  mutable std::array<Shard, kShards> shards_;

  // Guards everything below. Mutable, like the cache: a const read may have to apply the queue.
  mutable std::mutex queue_mutex_;
  mutable std::condition_variable applied_cv_;
  mutable std::vector<DocumentWrite> queue_;
  mutable size_t queued_bytes_ = 0;
  uint64_t enqueued_ = 0;
  mutable uint64_t applied_ = 0;
  mutable bool applying_ = false;  // one batch at a time keeps writes in order
  mutable Status failure_ = Status::Ok();
  mutable uint64_t failures_ = 0;            // counts Fail(): a batch applied across one lost its entries
  mutable std::atomic<bool> failed_{false};  // failure_ set, readable without queue_mutex_ (Writable)
};

}  // namespace

std::unique_ptr<DocumentStore> WithWriteBehindCache(std::unique_ptr<DocumentStore> store, size_t capacity_bytes) {
  return std::make_unique<WriteBehindStore>(std::move(store), capacity_bytes);
}

}  // namespace twins
