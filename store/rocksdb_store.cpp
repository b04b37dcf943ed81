#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <atomic>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "document_store.hpp"

namespace twins {
namespace {

// Key layout, schema 1: "d" twin_id NUL doc_name -> 8-byte little-endian version, data JSON.
// Twin ids never contain NUL, so one twin's documents form one contiguous key range.
constexpr char kSchemaKey[] = "!schema";
constexpr char kSchemaVersion[] = "1";

void AppendTwinPrefix(std::string_view twin, std::string* key) {
  *key += 'd';
  key->append(twin);
  *key += '\0';
}

std::string TwinPrefix(std::string_view twin) {
  std::string key;
  key.reserve(twin.size() + 2);
  AppendTwinPrefix(twin, &key);
  return key;
}

// The key of a document, written into *key so that a batch reuses one buffer for all of them.
void SetDocumentKey(std::string_view twin, std::string_view doc, std::string* key) {
  key->clear();
  AppendTwinPrefix(twin, key);
  key->append(doc);
}

std::string DocumentKey(std::string_view twin, std::string_view doc) {
  std::string key;
  SetDocumentKey(twin, doc, &key);
  return key;
}

// The value's parts as RocksDB takes them, without copying the data into one string.
struct EncodedDocument {
  explicit EncodedDocument(const StoredDocument& document) {
    for (int i = 0; i < 8; ++i) version[i] = static_cast<char>((document.version >> (8 * i)) & 0xFF);
    slices[0] = rocksdb::Slice(version, sizeof version);
    slices[1] = rocksdb::Slice(document.data);
  }
  rocksdb::SliceParts parts() const { return rocksdb::SliceParts(slices, 2); }

  char version[8];
  rocksdb::Slice slices[2];
};

bool Decode(const std::string& value, StoredDocument* out) {
  if (value.size() < 8) return false;
  uint64_t version = 0;
  for (int i = 0; i < 8; ++i) version |= static_cast<uint64_t>(static_cast<unsigned char>(value[i])) << (8 * i);
  out->version = version;
  out->data.assign(value, 8, std::string::npos);
  return true;
}

// RocksDB's own messages. By default they go to a LOG file in the database folder, where
// Debian's build logs at DEBUG level (a line per Sync(), no rotation) and, on a full disk,
// aborts the process on the second failed write to that file (its assertions are on). So
// warnings and errors go to the caller's log, and the rest is dropped.
class ForwardingLogger final : public rocksdb::Logger {
 public:
  explicit ForwardingLogger(LogFn log) : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), log_(std::move(log)) {}

  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < rocksdb::InfoLogLevel::WARN_LEVEL || level > rocksdb::InfoLogLevel::FATAL_LEVEL || !log_) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    try {
      log_(level == rocksdb::InfoLogLevel::WARN_LEVEL ? LogLevel::kWarning : LogLevel::kError,
           std::string("rocksdb: ") + line);
    } catch (...) {
      // Nothing may escape into RocksDB.
    }
  }

 private:
  const LogFn log_;
};

// A twin's key prefix, "d" twin_id NUL: the unit of the memtable's hash table. Other keys
// (the schema key) are their own prefix.
class TwinPrefixTransform final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "twins.TwinPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const void* nul = std::memchr(key.data(), '\0', key.size());
    return nul == nullptr ? key : rocksdb::Slice(key.data(), static_cast<const char*>(nul) - key.data() + 1);
  }
  bool InDomain(const rocksdb::Slice&) const override { return true; }
};

Status FromRocks(const rocksdb::Status& s) { return Status::Internal("storage error: " + s.ToString()); }

class RocksDbStore final : public DocumentStore {
 public:
  RocksDbStore(rocksdb::DB* db, bool sync, size_t max_log_bytes)
      : db_(db), fsync_(sync), max_log_bytes_(max_log_bytes) {}
  ~RocksDbStore() override {
    // Close() flushes nothing the WAL does not already hold, but reports a clean shutdown.
    db_->Close().PermitUncheckedError();
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DocumentKey(twin, doc), &value);
    if (s.IsNotFound()) return std::optional<StoredDocument>();
    if (!s.ok()) return FromRocks(s);
    StoredDocument document;
    if (!Decode(value, &document)) return Status::Internal("corrupt document record");
    return std::optional<StoredDocument>(std::move(document));
  }

  Status Write(std::vector<DocumentWrite> writes) override {
    size_t bytes = 0;  // the batch's size, reserved so that it grows without copies
    for (const DocumentWrite& write : writes) {
      bytes += write.twin.size() + write.doc.size() + 8 + (write.document ? write.document->data.size() : 0) + 16;
    }
    rocksdb::WriteBatch batch(bytes);
    std::string key;
    for (const DocumentWrite& write : writes) {
      SetDocumentKey(write.twin, write.doc, &key);
      rocksdb::Status s;
      if (write.document) {
        const rocksdb::Slice key_slice(key);
        s = batch.Put(nullptr, rocksdb::SliceParts(&key_slice, 1), EncodedDocument(*write.document).parts());
      } else {
        s = batch.Delete(key);
      }
      if (!s.ok()) return FromRocks(s);
    }
    rocksdb::Status s = db_->Write(write_options_, &batch);
    if (s.ok()) log_bytes_ += batch.GetDataSize();
    return s.ok() ? Status::Ok() : FromRocks(s);
  }

  Result<std::vector<std::string>> List(std::string_view twin) const override {
    std::vector<std::string> names;
    Status s = Scan(twin, [&](const rocksdb::Slice& key) {
      names.emplace_back(key.data() + twin.size() + 2, key.size() - twin.size() - 2);
    });
    if (!s.ok()) return s;
    return names;
  }

  Status Sync() override {
    rocksdb::Status s = db_->FlushWAL(fsync_);
    if (!s.ok()) return FromRocks(s);
    // Updated in place, the memtable of a set of busy documents never fills up, so RocksDB
    // would never flush it and the log it keeps for it would grow without end (500 MB in 20 s
    // of patches). A flush every few write buffers' worth of log lets the old log go.
    if (log_bytes_ >= max_log_bytes_) {
      log_bytes_ = 0;
      rocksdb::FlushOptions background;
      background.wait = false;
      s = db_->Flush(background);
      if (!s.ok()) return FromRocks(s);
    }
    return Status::Ok();
  }

  Status DeleteAll(std::string_view twin) override {
    rocksdb::WriteBatch batch;
    Status s = Scan(twin, [&](const rocksdb::Slice& key) { batch.Delete(key).PermitUncheckedError(); });
    if (!s.ok()) return s;
    rocksdb::Status w = db_->Write(write_options_, &batch);
    return w.ok() ? Status::Ok() : FromRocks(w);
  }

 private:
  template <class Visit>
  Status Scan(std::string_view twin, Visit visit) const {
    const std::string prefix = TwinPrefix(twin);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) visit(it->key());
    return it->status().ok() ? Status::Ok() : FromRocks(it->status());
  }

  std::unique_ptr<rocksdb::DB> db_;
  const rocksdb::WriteOptions write_options_;
  const bool fsync_;
  const size_t max_log_bytes_;
  std::atomic<size_t> log_bytes_{0};  // written since the last flush
};

}  // namespace

Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.info_log = std::make_shared<ForwardingLogger>(options.log);
  // The log is written by Sync(), once for all the writes before it, not once per write.
  db_options.manual_wal_flush = true;
  const size_t document_cache_bytes = options.cache_bytes / 4;
  const size_t block_cache_bytes = options.cache_bytes - document_cache_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;  // keeps index memory inside the cache bound
  // A single index block of a large database outgrows a cache shard and was decompressed on
  // every cold read (1.9 ms at 100 000 twins); partitions of 4 KiB stay cached.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Write buffers are charged to the same cache, so block_cache_bytes bounds them too.
  db_options.write_buffer_size = std::min<size_t>(8 << 20, block_cache_bytes / 4);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(block_cache_bytes / 2, table.block_cache);
  // Twins overwrite the same keys all day: updating a value in its memtable slot, when the
  // new one fits, keeps the memtable small and a patch 2 us faster than inserting a version.
  // It forgoes consistent snapshots of values, which no read here uses.
  db_options.inplace_update_support = true;
  db_options.allow_concurrent_memtable_write = false;
  // Finding a key's slot in one skiplist of every key cost ~22 key comparisons, half of
  // RocksDB's work per write; hashed by twin, a key is found among its twin's few documents.
  // The bucket array (8 bytes a bucket) takes an eighth of the write buffer: a new memtable
  // already over its size aborts Debian's RocksDB. 96 Ki buckets with 6 MiB write buffers.
  db_options.prefix_extractor = std::make_shared<TwinPrefixTransform>();
  db_options.memtable_factory.reset(
      rocksdb::NewHashSkipListRepFactory(std::max<size_t>(1, db_options.write_buffer_size / 64)));

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, &raw);
  if (!s.ok()) return Status::Internal("cannot open database at " + options.path + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  std::string schema;
  s = db->Get(rocksdb::ReadOptions(), kSchemaKey, &schema);
  if (s.IsNotFound()) {
    rocksdb::ReadOptions all;
    all.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(all));
    it->SeekToFirst();
    if (it->Valid()) return Status::Internal(options.path + " holds data but no schema version: not a twins database");
    rocksdb::WriteOptions sync;
    sync.sync = true;
    s = db->Put(sync, kSchemaKey, kSchemaVersion);
  } else if (s.ok() && schema != kSchemaVersion) {
    return Status::Internal(options.path + " has twins schema version " + schema + ", this build reads only " +
                            kSchemaVersion);
  }
  if (!s.ok()) return Status::Internal("cannot read schema version of " + options.path + ": " + s.ToString());
  auto store = std::make_unique<RocksDbStore>(db.release(), options.sync_writes, 2 * db_options.write_buffer_size);
  return WithWriteBehindCache(std::move(store), document_cache_bytes);
}

}  // namespace twins
