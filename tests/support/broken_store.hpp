// Stores that fail, for the internal-error paths of both APIs: BrokenStore fails every call as
// a broken disk would, ThrowingStore breaks the no-exception rule on reads, SyncFailingStore
// is a real store whose log writes fail on demand.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/document_store.hpp"

namespace twins::test {

class BrokenStore : public DocumentStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override { return Fail(); }
  Status Write(std::vector<DocumentWrite>) override { return Fail(); }
  Result<std::vector<std::string>> List(std::string_view) const override { return Fail(); }
  Status DeleteAll(std::string_view) override { return Fail(); }
  Status Sync() override { return Fail(); }

 private:
  static Status Fail() { return Status::Internal("IO error: disk on fire"); }
};

class ThrowingStore : public BrokenStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override {
    throw std::runtime_error("store exploded");
  }
};

// A real store whose Sync() fails while fail_syncs is set, as one whose disk refused the log
// write: what was written before it stays in the store (uncertain, as after a real failure).
class SyncFailingStore : public DocumentStore {
 public:
  explicit SyncFailingStore(std::unique_ptr<DocumentStore> store) : store_(std::move(store)) {}

  std::atomic<bool> fail_syncs{false};

  Status Sync() override {
    return fail_syncs.load() ? Status::InsufficientStorage("the log write failed", 0, 0) : store_->Sync();
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    return store_->Get(twin, doc);
  }
  Status Write(std::vector<DocumentWrite> writes) override { return store_->Write(std::move(writes)); }
  Result<std::vector<std::string>> List(std::string_view twin) const override { return store_->List(twin); }
  Status DeleteAll(std::string_view twin) override { return store_->DeleteAll(twin); }
  Result<uint64_t> CountTwins() const override { return store_->CountTwins(); }
  ChangeBounds Changes() const override { return store_->Changes(); }
  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    return store_->ReadChanges(after, max_count, max_bytes);
  }
  Status PutWatch(const WatchRecord& watch) override { return store_->PutWatch(watch); }
  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    return store_->DeleteWatch(twin, doc, watcher);
  }
  Result<std::vector<WatchRecord>> ListWatches() const override { return store_->ListWatches(); }

 private:
  std::unique_ptr<DocumentStore> store_;
};

}  // namespace twins::test
