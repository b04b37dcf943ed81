#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "store/document_store.hpp"
#include "store/free_space.hpp"

namespace twins {
namespace {

// Key layout, schema 2. Default column family (hashed by twin, values updated in place):
//   "d" twin_id NUL doc_name -> 8-byte little-endian version, 8-byte modified ms, data JSON.
// Twin ids never contain NUL, so one twin's documents form one contiguous key range.
// Column family "changes" (ordered; scanned by range):
//   "c" seq (8 bytes big-endian)            -> a change-log entry (EncodeChange)
//   "h" twin NUL doc NUL version (8 bytes BE) -> seq of the entry that made that version
//   "w" twin NUL doc NUL watcher            -> the watch's value
// Schema 1 (no modified time, no change log) is upgraded in place at open, in one batch.
constexpr char kSchemaKey[] = "!schema";
constexpr char kSchemaVersion[] = "2";
constexpr char kChangesFamily[] = "changes";

void AppendBigEndian(uint64_t value, std::string* out) {
  for (int i = 7; i >= 0; --i) *out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

uint64_t ReadBigEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

void AppendLittleEndian(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) *out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

uint64_t ReadLittleEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

std::string ChangeKey(uint64_t seq) {
  std::string key = "c";
  AppendBigEndian(seq, &key);
  return key;
}

std::string VersionKey(std::string_view twin, std::string_view doc, uint64_t version) {
  std::string key = "h";
  key.append(twin);
  key += '\0';
  key.append(doc);
  key += '\0';
  AppendBigEndian(version, &key);
  return key;
}

std::string WatchKey(std::string_view twin, std::string_view doc, std::string_view watcher) {
  std::string key = "w";
  key.append(twin);
  key += '\0';
  key.append(doc);
  key += '\0';
  key.append(watcher);
  return key;
}

// A change-log entry: time (8, LE), kind (1), version (8, LE), four lengths (2 bytes each,
// LE: twin, doc, source, origin), those strings, then the data to the end.
std::string EncodeChange(const Change& change) {
  std::string out;
  out.reserve(33 + change.twin.size() + change.doc.size() + change.source.size() + change.origin.size() +
              change.data.size());
  AppendLittleEndian(static_cast<uint64_t>(change.time_ms), &out);
  out += static_cast<char>(change.kind);
  AppendLittleEndian(change.version, &out);
  for (const std::string* part : {&change.twin, &change.doc, &change.source, &change.origin}) {
    const size_t size = std::min<size_t>(part->size(), 0xFFFF);
    out += static_cast<char>(size & 0xFF);
    out += static_cast<char>(size >> 8);
  }
  for (const std::string* part : {&change.twin, &change.doc, &change.source, &change.origin}) {
    out.append(*part, 0, 0xFFFF);
  }
  out += change.data;
  return out;
}

bool DecodeChange(uint64_t seq, std::string_view value, Change* out) {
  if (value.size() < 25) return false;
  out->seq = seq;
  out->time_ms = static_cast<int64_t>(ReadLittleEndian(value.data()));
  out->kind = static_cast<ChangeKind>(value[8]);
  out->version = ReadLittleEndian(value.data() + 9);
  size_t sizes[4];
  size_t at = 17;
  for (size_t& size : sizes) {
    size = static_cast<unsigned char>(value[at]) |
           (static_cast<size_t>(static_cast<unsigned char>(value[at + 1])) << 8);
    at += 2;
  }
  std::string* parts[] = {&out->twin, &out->doc, &out->source, &out->origin};
  for (int i = 0; i < 4; ++i) {
    if (value.size() - at < sizes[i]) return false;
    parts[i]->assign(value.substr(at, sizes[i]));
    at += sizes[i];
  }
  out->data.assign(value.substr(at));
  return true;
}

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
    AppendLittleEndian(document.version, &header);
    AppendLittleEndian(static_cast<uint64_t>(document.modified_ms), &header);
    slices[0] = rocksdb::Slice(header);
    slices[1] = rocksdb::Slice(document.data);
  }
  rocksdb::SliceParts parts() const { return rocksdb::SliceParts(slices, 2); }

  std::string header;
  rocksdb::Slice slices[2];
};

bool Decode(const std::string& value, StoredDocument* out) {
  if (value.size() < 16) return false;
  out->version = ReadLittleEndian(value.data());
  out->modified_ms = static_cast<int64_t>(ReadLittleEndian(value.data() + 8));
  out->data.assign(value, 16, std::string::npos);
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

constexpr auto kFreeSpaceRefresh = std::chrono::milliseconds(100);
constexpr auto kResumeInterval = std::chrono::milliseconds(250);
// Resuming flushes the memtable to a table file: not tried on a disk with less room than this.
constexpr uint64_t kMinFreeToResume = 256 << 10;

uint64_t Mib(uint64_t bytes) { return bytes == UINT64_MAX ? bytes : bytes >> 20; }

// RocksDB's background errors (a failed memtable flush), seen as they happen, so that writes
// are refused at once; and no automatic recovery: RocksDB's polls the disk every 5 s and
// keeps DB::Resume() busy meanwhile, the store resumes by itself sooner.
class ErrorListener final : public rocksdb::EventListener {
 public:
  void OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (seen_) return;
    no_space_ = error->IsNoSpace();
    message_ = error->ToString();
    seen_.store(true);
  }
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }

  bool seen() const { return seen_.load(); }
  // The error seen, and forgets it.
  rocksdb::Status Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    seen_.store(false);
    return no_space_ ? rocksdb::Status::NoSpace(message_) : rocksdb::Status::IOError(message_);
  }

 private:
  std::mutex mutex_;  // never held while calling RocksDB, which calls in here under its own locks
  std::atomic<bool> seen_{false};
  bool no_space_ = false;
  std::string message_;
};

class RocksDbStore final : public DocumentStore {
 public:
  RocksDbStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* changes, const RocksDbOptions& options,
               size_t max_log_bytes, std::shared_ptr<ErrorListener> errors)
      : db_(db),
        changes_(changes),
        changelog_limit_(options.changelog_bytes),
        fsync_(options.sync_writes),
        max_log_bytes_(max_log_bytes),
        min_free_bytes_(options.min_free_bytes),
        free_space_(options.path, kFreeSpaceRefresh),
        errors_(std::move(errors)),
        log_(options.log),
        path_(options.path) {}
  ~RocksDbStore() override {
    db_->DestroyColumnFamilyHandle(changes_).PermitUncheckedError();
    // Close() flushes nothing the WAL does not already hold, but reports a clean shutdown.
    db_->Close().PermitUncheckedError();
  }

  // At open: where the change log starts and ends, and its size.
  Status LoadChangeLog() {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    uint64_t bytes = 0;
    for (it->Seek("c"); it->Valid() && it->key().starts_with("c"); it->Next()) {
      if (it->key().size() != 9) return Status::Internal("corrupt change-log key");
      const uint64_t seq = ReadBigEndian(it->key().data() + 1);
      if (bytes == 0) oldest_seq_ = seq;
      newest_seq_ = seq;
      bytes += it->key().size() + it->value().size();
    }
    if (!it->status().ok()) return FromRocks(it->status());
    changelog_bytes_ = bytes;
    return Status::Ok();
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
      const size_t data = write.document ? write.document->data.size() : 0;
      bytes += write.twin.size() + write.doc.size() + 16 + data + 16;
      if (write.change) bytes += 2 * (write.twin.size() + write.doc.size() + data) + 80;
    }
    rocksdb::WriteBatch batch(bytes);
    std::string key;
    uint64_t first_seq = 0, last_seq = 0, log_bytes = 0;
    for (const DocumentWrite& write : writes) {
      SetDocumentKey(write.twin, write.doc, &key);
      rocksdb::Status s;
      if (write.document) {
        const rocksdb::Slice key_slice(key);
        s = batch.Put(nullptr, rocksdb::SliceParts(&key_slice, 1), EncodedDocument(*write.document).parts());
      } else {
        s = batch.Delete(key);
      }
      if (s.ok() && write.change) {
        const Change& change = *write.change;
        const std::string change_key = ChangeKey(change.seq);
        const std::string entry = EncodeChange(change);
        s = batch.Put(changes_, change_key, entry);
        if (s.ok() && change.kind != ChangeKind::kDelete) {
          std::string seq;
          AppendBigEndian(change.seq, &seq);
          s = batch.Put(changes_, VersionKey(change.twin, change.doc, change.version), seq);
        }
        if (first_seq == 0) first_seq = change.seq;
        last_seq = change.seq;
        log_bytes += change_key.size() + entry.size();
      }
      if (!s.ok()) return FromRocks(s);
    }
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    rocksdb::Status s = db_->Write(write_options_, &batch);
    if (!s.ok()) return Stop(s);
    log_bytes_ += batch.GetDataSize();
    if (last_seq != 0) {
      std::lock_guard<std::mutex> log_lock(log_mutex_);
      if (newest_seq_ < oldest_seq_) oldest_seq_ = first_seq;
      newest_seq_ = std::max(newest_seq_, last_seq);
      changelog_bytes_ += log_bytes;
    }
    return Status::Ok();
  }

  ChangeBounds Changes() const override {
    std::lock_guard<std::mutex> lock(log_mutex_);
    return {oldest_seq_, newest_seq_};
  }

  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    std::vector<Change> changes;
    uint64_t from = after + 1;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      from = std::max(from, oldest_seq_);  // below lie only deleted entries (tombstones to skip)
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    size_t bytes = 0;
    for (it->Seek(ChangeKey(from)); it->Valid() && it->key().starts_with("c"); it->Next()) {
      if (changes.size() >= max_count || (bytes >= max_bytes && !changes.empty())) break;
      if (it->key().size() != 9) return Status::Internal("corrupt change-log key");
      Change change;
      if (!DecodeChange(ReadBigEndian(it->key().data() + 1), std::string_view(it->value().data(), it->value().size()),
                        &change)) {
        return Status::Internal("corrupt change-log entry");
      }
      bytes += change.data.size() + 64;
      changes.push_back(std::move(change));
    }
    if (!it->status().ok()) return FromRocks(it->status());
    return changes;
  }

  Result<std::optional<Change>> FindVersion(std::string_view twin, std::string_view doc,
                                            uint64_t version) const override {
    std::string seq;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), changes_, VersionKey(twin, doc, version), &seq);
    if (s.IsNotFound()) return std::optional<Change>();
    if (!s.ok()) return FromRocks(s);
    if (seq.size() != 8) return Status::Internal("corrupt version index");
    const uint64_t number = ReadBigEndian(seq.data());
    std::string entry;
    s = db_->Get(rocksdb::ReadOptions(), changes_, ChangeKey(number), &entry);
    if (s.IsNotFound()) return std::optional<Change>();  // trimmed meanwhile
    if (!s.ok()) return FromRocks(s);
    Change change;
    if (!DecodeChange(number, entry, &change)) return Status::Internal("corrupt change-log entry");
    return std::optional<Change>(std::move(change));
  }

  Result<uint64_t> OldestVersion(std::string_view twin, std::string_view doc) const override {
    std::string prefix = VersionKey(twin, doc, 0);
    prefix.resize(prefix.size() - 8);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    it->Seek(prefix);
    if (!it->status().ok()) return FromRocks(it->status());
    if (!it->Valid() || !it->key().starts_with(prefix) || it->key().size() != prefix.size() + 8) return uint64_t{0};
    return ReadBigEndian(it->key().data() + prefix.size());
  }

  Status PutWatch(const WatchRecord& watch) override {
    return WriteChangesFamily([&](rocksdb::WriteBatch& batch) {
      return batch.Put(changes_, WatchKey(watch.twin, watch.doc, watch.watcher), watch.value);
    });
  }

  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    return WriteChangesFamily(
        [&](rocksdb::WriteBatch& batch) { return batch.Delete(changes_, WatchKey(twin, doc, watcher)); });
  }

  Result<std::vector<WatchRecord>> ListWatches() const override {
    std::vector<WatchRecord> watches;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    for (it->Seek("w"); it->Valid() && it->key().starts_with("w"); it->Next()) {
      std::string_view key(it->key().data() + 1, it->key().size() - 1);
      const size_t first = key.find('\0');
      const size_t second = first == std::string_view::npos ? first : key.find('\0', first + 1);
      if (second == std::string_view::npos) return Status::Internal("corrupt watch key");
      watches.push_back({std::string(key.substr(0, first)), std::string(key.substr(first + 1, second - first - 1)),
                         std::string(key.substr(second + 1)), it->value().ToString()});
    }
    if (!it->status().ok()) return FromRocks(it->status());
    return watches;
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
    Status trimmed = TrimChangeLog();
    if (!trimmed.ok()) return trimmed;
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    rocksdb::Status s = db_->FlushWAL(fsync_);
    if (!s.ok()) return Stop(s);
    // Updated in place, the memtable of a set of busy documents never fills up, so RocksDB
    // would never flush it and the log it keeps for it would grow without end (500 MB in 20 s
    // of patches). A flush every few write buffers' worth of log lets the old log go.
    if (log_bytes_ >= max_log_bytes_) {
      log_bytes_ = 0;
      rocksdb::FlushOptions background;
      background.wait = false;
      s = db_->Flush(background);
      if (!s.ok()) return Stop(s);
    }
    return Status::Ok();
  }

  Status DeleteAll(std::string_view twin) override {
    rocksdb::WriteBatch batch;
    Status s = Scan(twin, [&](const rocksdb::Slice& key) { batch.Delete(key).PermitUncheckedError(); });
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    rocksdb::Status w = db_->Write(write_options_, &batch);
    return w.ok() ? Status::Ok() : Stop(w);
  }

  Status Writable(bool grows) override {
    if (stopped_.load(std::memory_order_acquire) || errors_->seen()) {
      Status s = TryResume();
      if (!s.ok()) return s;
    }
    if (!grows || min_free_bytes_ == 0) return Status::Ok();
    const uint64_t free = free_space_.Bytes();
    const bool below = free < min_free_bytes_;
    if (below != below_reserve_.exchange(below, std::memory_order_relaxed)) LogReserve(below, free);
    if (!below) return Status::Ok();
    return Status::InsufficientStorage(
        "not enough free disk space for the database: writes that add data are "
        "refused while less than " +
            std::to_string(Mib(min_free_bytes_)) + " MiB are free",
        Mib(min_free_bytes_), Mib(free));
  }

  Result<uint64_t> CountTwins() const override {
    rocksdb::ReadOptions all;
    all.total_order_seek = true;  // across twins: the memtable is hashed by twin
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(all));
    uint64_t twins = 0;
    std::string next;
    // Keys are "d" twin NUL doc: after a twin's first key, seek past all of them at once.
    for (it->Seek("d"); it->Valid() && it->key().starts_with("d");) {
      ++twins;
      const rocksdb::Slice key = it->key();
      const char* nul = static_cast<const char*>(std::memchr(key.data(), '\0', key.size()));
      if (nul == nullptr) return Status::Internal("corrupt document key");
      next.assign(key.data(), nul - key.data());
      next += '\x01';
      it->Seek(next);
    }
    if (!it->status().ok()) return FromRocks(it->status());
    return twins;
  }

  Result<ContentCounts> CountContents() const override {
    rocksdb::ReadOptions all;
    all.total_order_seek = true;
    all.fill_cache = false;  // a scan of everything would evict the documents in use
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(all));
    ContentCounts counts;
    std::string twin;
    for (it->Seek("d"); it->Valid() && it->key().starts_with("d"); it->Next()) {
      ++counts.documents;
      const rocksdb::Slice key = it->key();
      const char* nul = static_cast<const char*>(std::memchr(key.data(), '\0', key.size()));
      const size_t length = nul == nullptr ? key.size() : static_cast<size_t>(nul - key.data());
      if (counts.twins == 0 || twin.compare(0, std::string::npos, key.data(), length) != 0) {
        ++counts.twins;
        twin.assign(key.data(), length);
      }
    }
    if (!it->status().ok()) return FromRocks(it->status());
    return counts;
  }

  StoreStats Stats() const override {
    StoreStats stats;
    stats.write_failures = write_failures_.load(std::memory_order_relaxed);
    stats.below_reserve = below_reserve_.load(std::memory_order_relaxed);
    stats.stopped = stopped_.load(std::memory_order_acquire);
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(path_, error)) {
      const uintmax_t size = entry.is_regular_file(error) ? entry.file_size(error) : 0;
      if (!error) stats.disk_bytes += size;
    }
    return stats;
  }

 private:
  // One write of the changes family (a watch), in the same log as the documents.
  template <class Fill>
  Status WriteChangesFamily(Fill fill) {
    rocksdb::WriteBatch batch;
    rocksdb::Status s = fill(batch);
    if (!s.ok()) return FromRocks(s);
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    s = db_->Write(write_options_, &batch);
    return s.ok() ? Status::Ok() : Stop(s);
  }

  // Keeps the change log within changelog_limit_: deletes the oldest entries (and their
  // version index keys) down to 90 % of it, at most kTrimBatch entries per call so that one
  // Sync stays short. The newest entry always stays: seq never goes back after a restart.
  Status TrimChangeLog() {
    static constexpr size_t kTrimBatch = 4096;
    uint64_t from, newest, excess;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      if (changelog_bytes_ <= changelog_limit_ || newest_seq_ <= oldest_seq_) return Status::Ok();
      from = oldest_seq_;
      newest = newest_seq_;
      excess = changelog_bytes_ - changelog_limit_ * 9 / 10;
    }
    rocksdb::WriteBatch batch;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    uint64_t freed = 0, next = from;
    size_t entries = 0;
    for (it->Seek(ChangeKey(from)); it->Valid() && it->key().starts_with("c") && freed < excess && entries < kTrimBatch;
         it->Next()) {
      if (it->key().size() != 9) return Status::Internal("corrupt change-log key");
      const uint64_t seq = ReadBigEndian(it->key().data() + 1);
      if (seq >= newest) break;
      Change change;
      if (DecodeChange(seq, std::string_view(it->value().data(), it->value().size()), &change) &&
          change.kind != ChangeKind::kDelete) {
        // The index may point to a later entry of the same version (the document was deleted
        // and made again): only this entry's own index key goes.
        const std::string index_key = VersionKey(change.twin, change.doc, change.version);
        std::string indexed;
        if (db_->Get(rocksdb::ReadOptions(), changes_, index_key, &indexed).ok() && indexed.size() == 8 &&
            ReadBigEndian(indexed.data()) == seq) {
          batch.Delete(changes_, index_key).PermitUncheckedError();
        }
      }
      batch.Delete(changes_, it->key()).PermitUncheckedError();
      freed += it->key().size() + it->value().size();
      next = seq + 1;
      ++entries;
    }
    if (!it->status().ok()) return FromRocks(it->status());
    if (entries == 0) return Status::Ok();
    // The oldest moves before the entries go: a reader that misses them then finds the log's
    // oldest past them (a stream ends with overflow rather than pass over them). Should the
    // write fail, the entries below stay unread, which is as if they had gone.
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      oldest_seq_ = std::max(oldest_seq_, next);
      changelog_bytes_ -= std::min(changelog_bytes_, freed);
    }
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    rocksdb::Status s = db_->Write(write_options_, &batch);
    return s.ok() ? Status::Ok() : Stop(s);
  }

  template <class Visit>
  Status Scan(std::string_view twin, Visit visit) const {
    const std::string prefix = TwinPrefix(twin);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) visit(it->key());
    return it->status().ok() ? Status::Ok() : FromRocks(it->status());
  }

  void Log(LogLevel level, const std::string& message) const {
    if (log_) log_(level, message);
  }

  // Called with write_mutex_ held, after RocksDB refused a write, a log write or a flush.
  // From then on nothing reaches the log until RocksDB has resumed: a second write to a log
  // that failed once leaves RocksDB 7.8 unable to recover ("Seen error").
  Status Stop(const rocksdb::Status& cause) {
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    if (stopped_) return stop_status_;
    const uint64_t free = free_space_.Refresh();
    if (cause.IsNoSpace()) {
      stop_status_ = Status::InsufficientStorage("the database's disk is full: writes are refused until space is freed",
                                                 Mib(min_free_bytes_), Mib(free));
    } else {
      stop_status_ = Status::Internal("the database cannot be written, writes are refused until it recovers: " +
                                      cause.ToString());
    }
    stopped_at_ = std::chrono::steady_clock::now();
    next_resume_ = stopped_at_;
    stopped_.store(true, std::memory_order_release);
    Log(LogLevel::kError, "the database cannot be written (" + cause.ToString() +
                              "): writes are refused, reads go on; it resumes by itself once the disk has room");
    return stop_status_;
  }

  // Resumes RocksDB when the disk has room, at most every kResumeInterval.
  Status TryResume() {
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (errors_->seen()) {
      rocksdb::Status cause = errors_->Take();
      if (!stopped_) static_cast<void>(Stop(cause));
    }
    if (!stopped_) return Status::Ok();
    const auto now = std::chrono::steady_clock::now();
    if (now < next_resume_) return stop_status_;
    next_resume_ = now + kResumeInterval;
    if (free_space_.Refresh() < kMinFreeToResume) return stop_status_;
    rocksdb::Status s = db_->Resume();
    if (!s.ok() || errors_->seen()) {
      if (errors_->seen()) errors_->Take();
      return stop_status_;
    }
    stopped_.store(false, std::memory_order_release);
    stop_status_ = Status::Ok();
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - stopped_at_).count();
    Log(LogLevel::kWarning, "the database accepts writes again (refused for " + std::to_string(ms) + " ms)");
    return Status::Ok();
  }

  void LogReserve(bool below, uint64_t free) const {
    const std::string figures = std::to_string(Mib(free)) + " MiB free, reserve " +
                                std::to_string(Mib(min_free_bytes_)) + " MiB";
    if (below) {
      Log(LogLevel::kWarning,
          "disk space low (" + figures + "): writes that add data are refused, reads and deletions go on");
    } else {
      Log(LogLevel::kWarning, "disk space back above the reserve (" + figures + "): writes accepted again");
    }
  }

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* const changes_;
  const uint64_t changelog_limit_;
  // The change log's bounds and size; guarded by log_mutex_.
  mutable std::mutex log_mutex_;
  uint64_t oldest_seq_ = 1;
  uint64_t newest_seq_ = 0;
  uint64_t changelog_bytes_ = 0;
  const rocksdb::WriteOptions write_options_;
  const bool fsync_;
  const size_t max_log_bytes_;
  const uint64_t min_free_bytes_;
  std::atomic<size_t> log_bytes_{0};  // written since the last flush
  FreeSpace free_space_;
  std::atomic<bool> below_reserve_{false};
  const std::shared_ptr<ErrorListener> errors_;
  const LogFn log_;
  const std::string path_;
  std::atomic<uint64_t> write_failures_{0};

  // Held around every call that writes RocksDB's log (Write, FlushWAL, Resume), so that none
  // follows a failed one. Guards what follows.
  std::mutex write_mutex_;
  std::atomic<bool> stopped_{false};  // set with write_mutex_ held, read without
  Status stop_status_;
  std::chrono::steady_clock::time_point stopped_at_;
  std::chrono::steady_clock::time_point next_resume_;
};

}  // namespace

Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.info_log = std::make_shared<ForwardingLogger>(options.log);
  auto errors = std::make_shared<ErrorListener>();
  db_options.listeners.push_back(errors);
  // The log is written by Sync(), once for all the writes before it, not once per write.
  db_options.manual_wal_flush = true;
  const size_t block_cache_bytes = options.cache_bytes;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;  // keeps index memory inside the cache bound
  // A single index block of a large database outgrows a cache shard and was decompressed on
  // every cold read (docs/performance.md); partitions of 4 KiB stay cached.
  table.index_type = rocksdb::BlockBasedTableOptions::kTwoLevelIndexSearch;
  table.partition_filters = true;
  table.metadata_block_size = 4096;
  table.cache_index_and_filter_blocks_with_high_priority = true;
  table.pin_top_level_index_and_filter = true;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  // Write buffers are charged to the same cache, so block_cache_bytes bounds them too.
  db_options.write_buffer_size = std::min<size_t>(8 << 20, block_cache_bytes / 4);
  db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(block_cache_bytes / 2,
                                                                                  table.block_cache);
  // Twins overwrite the same keys all day: updating a value in its memtable slot, when the
  // new one fits, keeps the memtable small and a patch faster than inserting a version.
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

  // RocksDB lists the folder (for its LOG summary) before create_if_missing creates it, and
  // reports a new database's missing folder as an error: create it first. A failure here
  // (no parent, no permission) is left for Open to report.
  std::error_code ignored;
  std::filesystem::create_directory(options.path, ignored);
  db_options.create_missing_column_families = true;
  // The change log: an ordered column family (no hashing, no updates in place), in the same
  // write-ahead log as the documents, so that one batch writes both atomically.
  rocksdb::ColumnFamilyOptions changes_options;
  changes_options.write_buffer_size = db_options.write_buffer_size;
  changes_options.table_factory = db_options.table_factory;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(db_options)}, {kChangesFamily, changes_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, options.path, families, &handles, &raw);
  if (!s.ok()) return Status::Internal("cannot open database at " + options.path + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  // The default family's handle is owned by the database; the other one is ours to destroy.
  struct HandleCloser {
    rocksdb::DB* db;
    rocksdb::ColumnFamilyHandle* handle;
    ~HandleCloser() {
      if (handle != nullptr) db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
  } changes{db.get(), handles[1]};
  db->DestroyColumnFamilyHandle(handles[0]).PermitUncheckedError();

  std::string schema;
  s = db->Get(rocksdb::ReadOptions(), kSchemaKey, &schema);
  rocksdb::WriteOptions sync;
  sync.sync = true;
  if (s.IsNotFound()) {
    rocksdb::ReadOptions all;
    all.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(all));
    it->SeekToFirst();
    if (it->Valid()) return Status::Internal(options.path + " holds data but no schema version: not a twins database");
    s = db->Put(sync, kSchemaKey, kSchemaVersion);
  } else if (s.ok() && schema == "1") {
    // Schema 1 documents lack the modified time: written again with 0 ("unknown"), with the
    // new schema version, in one atomic batch.
    rocksdb::WriteBatch batch;
    rocksdb::ReadOptions all;
    all.total_order_seek = true;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(all));
    for (it->Seek("d"); it->Valid() && it->key().starts_with("d"); it->Next()) {
      if (it->value().size() < 8) return Status::Internal(options.path + ": corrupt document record");
      std::string value(it->value().data(), 8);
      value.append(8, '\0');
      value.append(it->value().data() + 8, it->value().size() - 8);
      batch.Put(it->key(), value).PermitUncheckedError();
    }
    if (!it->status().ok()) return Status::Internal("cannot upgrade " + options.path + ": " + it->status().ToString());
    batch.Put(kSchemaKey, kSchemaVersion).PermitUncheckedError();
    s = db->Write(sync, &batch);
    if (s.ok() && options.log) options.log(LogLevel::kWarning, "database upgraded from schema 1 to schema 2");
  } else if (s.ok() && schema != kSchemaVersion) {
    return Status::Internal(options.path + " has twins schema version " + schema + ", this build reads only " +
                            kSchemaVersion + " (and upgrades 1)");
  }
  if (!s.ok()) return Status::Internal("cannot read schema version of " + options.path + ": " + s.ToString());
  auto store = std::make_unique<RocksDbStore>(db.release(), changes.handle, options, 2 * db_options.write_buffer_size,
                                              errors);
  changes.handle = nullptr;  // the store owns it now
  Status loaded = store->LoadChangeLog();
  if (!loaded.ok()) return loaded;
  return std::unique_ptr<DocumentStore>(std::move(store));
}

}  // namespace twins
