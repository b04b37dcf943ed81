#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>

#include <cstring>

#include "document_store.hpp"

namespace twins {
namespace {

// Key layout, schema 1: "d" twin_id NUL doc_name -> 8-byte little-endian version, data JSON.
// Twin ids never contain NUL, so one twin's documents form one contiguous key range.
constexpr char kSchemaKey[] = "!schema";
constexpr char kSchemaVersion[] = "1";

std::string TwinPrefix(std::string_view twin) {
  std::string key;
  key.reserve(twin.size() + 2);
  key += 'd';
  key += twin;
  key += '\0';
  return key;
}

std::string DocumentKey(std::string_view twin, std::string_view doc) { return TwinPrefix(twin).append(doc); }

std::string Encode(const StoredDocument& document) {
  std::string value(8, '\0');
  for (int i = 0; i < 8; ++i) value[i] = static_cast<char>((document.version >> (8 * i)) & 0xFF);
  value += document.data;
  return value;
}

bool Decode(const std::string& value, StoredDocument* out) {
  if (value.size() < 8) return false;
  uint64_t version = 0;
  for (int i = 0; i < 8; ++i) version |= static_cast<uint64_t>(static_cast<unsigned char>(value[i])) << (8 * i);
  out->version = version;
  out->data.assign(value, 8, std::string::npos);
  return true;
}

Status FromRocks(const rocksdb::Status& s) { return Status::Internal("storage error: " + s.ToString()); }

class RocksDbStore final : public DocumentStore {
 public:
  RocksDbStore(rocksdb::DB* db, bool sync) : db_(db), fsync_(sync) {}
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

  Status Put(std::string_view twin, std::string_view doc, const StoredDocument& document) override {
    rocksdb::Status s = db_->Put(write_options_, DocumentKey(twin, doc), Encode(document));
    return s.ok() ? Status::Ok() : FromRocks(s);
  }

  Status Delete(std::string_view twin, std::string_view doc) override {
    rocksdb::Status s = db_->Delete(write_options_, DocumentKey(twin, doc));
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
    return s.ok() ? Status::Ok() : FromRocks(s);
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
};

}  // namespace

Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.keep_log_file_num = 4;
  // The log is written by Sync(), once for all the writes before it, not once per write.
  db_options.manual_wal_flush = true;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
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
  db_options.write_buffer_size = std::min<size_t>(8 << 20, options.block_cache_bytes / 4);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(options.block_cache_bytes / 2, table.block_cache);

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, &raw);
  if (!s.ok()) return Status::Internal("cannot open database at " + options.path + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  std::string schema;
  s = db->Get(rocksdb::ReadOptions(), kSchemaKey, &schema);
  if (s.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
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
  return std::unique_ptr<DocumentStore>(new RocksDbStore(db.release(), options.sync_writes));
}

}  // namespace twins
