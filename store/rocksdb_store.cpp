#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/file_system.h>
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
#include "store/rocksdb_store.hpp"
#include "store/rocksdb_layout.hpp"

namespace twins {
namespace {

using namespace rocksdb_layout;

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

// Where a change-log key goes in the log family's memtable, remembered per prefix: the seq
// keys ("c" seq) come in increasing order, and so do the version keys of one document ("h"
// twin NUL doc NUL version). Without a hint each insert searched the whole skiplist from the
// top, the two kinds alternating (a tenth of the broker thread's time under a patch load).
class ChangeLogInsertHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "twins.ChangeLogInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return key[0] == 'c' ? rocksdb::Slice(key.data(), 1) : rocksdb::Slice(key.data(), key.size() - 8);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() > 8 && (key[0] == 'c' || key[0] == 'h'); }
};

Status FromRocks(const rocksdb::Status& s) { return Status::Internal("storage error: " + s.ToString()); }

constexpr auto kFreeSpaceRefresh = std::chrono::milliseconds(100);
constexpr auto kResumeInterval = std::chrono::milliseconds(250);
// Resuming flushes the memtable to a table file: not tried on a disk with less room than this.
constexpr uint64_t kMinFreeToResume = 256 << 10;
// Without sync_writes, seqs are reserved this many at a time, with one small fsync: a couple of
// seconds of the fastest writers, at a few ms each (docs/performance.md). A power loss skips at
// most this many seqs.
constexpr uint64_t kSeqReserveBlock = 65536;

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

// The seqs reserved ahead (RocksDbStore::Write), in a file of their own in the database's
// folder. Making them durable writes 8 bytes; a synced write to RocksDB's log would also write
// out all of the log not yet synced, on the writer's thread, and take the longer the more was
// written since (docs/performance.md, "Costs behind choices in the code").
class SeqReservation {
 public:
  // Reads the file; creates it, and syncs the folder so that it outlives a crash, if missing.
  rocksdb::IOStatus Open(rocksdb::FileSystem& fs, const std::string& folder) {
    const std::string path = folder + "/" + kReservedSeqFile;
    const rocksdb::IOOptions io;
    rocksdb::IOStatus s = fs.FileExists(path, io, nullptr);
    if (s.IsNotFound()) {
      std::unique_ptr<rocksdb::FSWritableFile> created;
      std::unique_ptr<rocksdb::FSDirectory> directory;
      s = fs.NewWritableFile(path, rocksdb::FileOptions(), &created, nullptr);
      if (s.ok()) s = created->Close(io, nullptr);
      if (s.ok()) s = fs.NewDirectory(folder, io, &directory, nullptr);
      if (s.ok()) s = directory->Fsync(io, nullptr);
    }
    if (s.ok()) s = fs.NewRandomRWFile(path, rocksdb::FileOptions(), &file_, nullptr);
    if (!s.ok()) return s;
    char scratch[8];
    rocksdb::Slice read;
    s = file_->Read(0, sizeof scratch, io, &read, scratch, nullptr);
    if (s.ok() && read.size() == 8) value_ = ReadBigEndian(read.data());
    if (s.ok() && read.size() != 8 && !read.empty()) s = rocksdb::IOStatus::Corruption(path + ": not 8 bytes");
    return s;
  }

  uint64_t value() const { return value_; }

  // Durable once it returns Ok.
  rocksdb::IOStatus Set(uint64_t seq) {
    std::string bytes;
    AppendBigEndian(seq, &bytes);
    rocksdb::IOStatus s = file_->Write(0, bytes, rocksdb::IOOptions(), nullptr);
    if (s.ok()) s = file_->Sync(rocksdb::IOOptions(), nullptr);
    if (s.ok()) value_ = seq;
    return s;
  }

 private:
  std::unique_ptr<rocksdb::FSRandomRWFile> file_;
  uint64_t value_ = 0;  // 0: none (a new file, empty)
};

class RocksDbStore final : public DocumentStore {
 public:
  RocksDbStore(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* changes, const RocksDbOptions& options,
               size_t max_log_bytes, std::shared_ptr<ErrorListener> errors)
      : db_(db),
        changes_(changes),
        fsync_(options.sync_writes),
        max_log_bytes_(max_log_bytes),
        min_free_bytes_(options.min_free_bytes),
        free_space_(options.path, kFreeSpaceRefresh),
        errors_(std::move(errors)),
        log_(options.log),
        path_(options.path) {}
  ~RocksDbStore() override {
    CloseCleanly();
    db_->DestroyColumnFamilyHandle(changes_).PermitUncheckedError();
    // Close() flushes nothing the WAL does not already hold, but reports a clean shutdown.
    db_->Close().PermitUncheckedError();
  }

  // At open: the newest seq, from the log's last entry or, when the log dropped every entry,
  // the newest seq the documents' family recorded with its last batch (so seq never goes back);
  // and at least the seqs reserved: a power loss may have taken back changes that readers had
  // seen, whose seqs must not come again.
  Status LoadChangeLog(rocksdb::FileSystem& fs) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    it->SeekForPrev(ChangeKey(UINT64_MAX));
    uint64_t newest = 0;
    if (it->Valid() && it->key().starts_with("c")) {
      if (it->key().size() != 9) return Status::Internal("corrupt change-log key");
      newest = ReadBigEndian(it->key().data() + 1);
    }
    if (!it->status().ok()) return FromRocks(it->status());
    std::string recorded;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), kNewestSeqKey, &recorded);
    if (!s.ok() && !s.IsNotFound()) return FromRocks(s);
    if (s.ok()) {
      if (recorded.size() != 8) return Status::Internal("corrupt newest seq");
      newest = std::max(newest, ReadBigEndian(recorded.data()));
    }
    {
      std::lock_guard<std::mutex> lock(write_mutex_);
      rocksdb::IOStatus reserved = reservation_.Open(fs, path_);
      if (!reserved.ok()) return Status::Internal("cannot read the reserved seqs: " + reserved.ToString());
      newest = std::max(newest, reservation_.value());
      loaded_ = true;
    }
    std::lock_guard<std::mutex> lock(log_mutex_);
    newest_seq_ = newest;
    return Status::Ok();
  }

  Status StartChangeLogAfter(uint64_t seq) override {
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      if (newest_seq_ != 0) return Status::Internal("the change log has entries already");
    }
    Status s = WriteOneBatch([&](rocksdb::WriteBatch& batch) {
      std::string value;
      AppendBigEndian(seq, &value);
      return batch.Put(kNewestSeqKey, value);
    });
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(log_mutex_);
    newest_seq_ = seq;
    return Status::Ok();
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), DocumentKey(twin, doc), &value);
    if (s.IsNotFound()) return std::optional<StoredDocument>();
    if (!s.ok()) return FromRocks(s);
    StoredDocument document;
    if (!DecodeDocument(value, &document)) return Status::Internal("corrupt document record");
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
    uint64_t last_seq = 0;
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
        last_seq = std::max(last_seq, change.seq);
      }
      if (!s.ok()) return FromRocks(s);
    }
    if (last_seq != 0) {
      // Beside the documents, which the log's retention never drops: the seq to go on from.
      std::string value;
      AppendBigEndian(last_seq, &value);
      rocksdb::Status s = batch.Put(kNewestSeqKey, value);
      if (!s.ok()) return FromRocks(s);
    }
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    // Without sync_writes, a Sync() makes a change visible (to the change stream, the event
    // feed) before it is on the disk, and a power loss may take it back. So no seq is written
    // before it is durably reserved: the next open goes on after every seq shown.
    if (!fsync_ && last_seq > reservation_.value()) {
      rocksdb::IOStatus reserved = reservation_.Set(last_seq + kSeqReserveBlock);
      if (!reserved.ok()) return Stop(reserved);
    }
    rocksdb::Status s = db_->Write(write_options_, &batch);
    if (!s.ok()) return Stop(s);
    log_bytes_ += batch.GetDataSize();
    if (last_seq != 0) {
      std::lock_guard<std::mutex> log_lock(log_mutex_);
      newest_seq_ = std::max(newest_seq_, last_seq);
    }
    return Status::Ok();
  }

  // The oldest entry is wherever the log's retention left it: the first "c" key (FIFO
  // retention drops whole files, leaving no deleted keys to skip).
  ChangeBounds Changes() const override {
    ChangeBounds bounds;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      bounds.newest = newest_seq_;
    }
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_));
    it->Seek("c");
    bounds.oldest = it->Valid() && it->key().starts_with("c") && it->key().size() == 9
                        ? ReadBigEndian(it->key().data() + 1)
                        : bounds.newest + 1;
    return bounds;
  }

  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    std::vector<Change> changes;
    const uint64_t from = after + 1;
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

  // Watches live beside the documents: the log's retention must never drop them.
  Status PutWatch(const WatchRecord& watch) override {
    return WriteOneBatch([&](rocksdb::WriteBatch& batch) {
      return batch.Put(WatchKey(watch.twin, watch.doc, watch.watcher), watch.value);
    });
  }

  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    return WriteOneBatch([&](rocksdb::WriteBatch& batch) { return batch.Delete(WatchKey(twin, doc, watcher)); });
  }

  Result<std::vector<WatchRecord>> ListWatches() const override {
    std::vector<WatchRecord> watches;
    rocksdb::ReadOptions all;
    all.total_order_seek = true;  // across twins: the memtable is hashed by twin
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(all));
    for (it->Seek("w"); it->Valid() && it->key().starts_with("w"); it->Next()) {
      WatchRecord watch;
      if (!DecodeWatchKey(std::string_view(it->key().data() + 1, it->key().size() - 1), &watch)) {
        return Status::Internal("corrupt watch key");
      }
      watch.value = it->value().ToString();
      watches.push_back(std::move(watch));
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
  Status WriteOneBatch(Fill fill) {
    rocksdb::WriteBatch batch;
    rocksdb::Status s = fill(batch);
    if (!s.ok()) return FromRocks(s);
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (stopped_) return stop_status_;
    s = db_->Write(write_options_, &batch);
    return s.ok() ? Status::Ok() : Stop(s);
  }

  // No seq above the newest written was shown: the next open need not skip the others
  // reserved, and seq goes on without a gap.
  void CloseCleanly() {
    std::lock_guard<std::mutex> lock(write_mutex_);
    if (!loaded_) return;  // newest_seq_ was never read: it would undo the reservation
    uint64_t newest;
    {
      std::lock_guard<std::mutex> log_lock(log_mutex_);
      newest = newest_seq_;
    }
    if (newest != reservation_.value()) reservation_.Set(newest).PermitUncheckedError();
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
  mutable std::mutex log_mutex_;
  uint64_t newest_seq_ = 0;  // guarded by log_mutex_
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
  SeqReservation reservation_;  // no seq above it is written
  bool loaded_ = false;         // LoadChangeLog read the seqs: a close may lower the reservation
  std::chrono::steady_clock::time_point stopped_at_;
  std::chrono::steady_clock::time_point next_resume_;
};

}  // namespace

Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options) {
  return OpenRocksDbStore(options, nullptr);
}

Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options, rocksdb::Env* env) {
  rocksdb::Options db_options;
  if (env != nullptr) db_options.env = env;
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
  // Retention is FIFO compaction: once the family's files exceed changelog_bytes, the oldest
  // file goes whole (an entry and its version key share their batch, hence their file). No
  // deletions, no compaction: keeping a log costs writing it and flushing it once.
  rocksdb::ColumnFamilyOptions changes_options;
  changes_options.table_factory = db_options.table_factory;
  changes_options.compaction_style = rocksdb::kCompactionStyleFIFO;
  changes_options.compaction_options_fifo.max_table_files_size = options.changelog_bytes;
  changes_options.compaction_options_fifo.allow_compaction = false;
  changes_options.memtable_insert_with_hint_prefix_extractor = std::make_shared<ChangeLogInsertHint>();
  // Files of about a quarter of the bound, so that retention keeps 3/4 of it at least.
  changes_options.write_buffer_size = std::clamp<size_t>(options.changelog_bytes / 4, size_t{64} << 10,
                                                         db_options.write_buffer_size);
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
  Status loaded = store->LoadChangeLog(*db_options.env->GetFileSystem());
  if (!loaded.ok()) return loaded;
  return std::unique_ptr<DocumentStore>(std::move(store));
}

}  // namespace twins
