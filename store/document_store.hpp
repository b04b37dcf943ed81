// Persistence behind the twin engine: raw documents by (twin id, document name).
// The engine owns the rules (versions, merge, limits, locking); a store only keeps bytes.
// A second backend implements this interface; nothing above store/ sees RocksDB types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "common/status.hpp"

namespace twins {

struct StoredDocument {
  uint64_t version = 0;
  std::string data;         // compact JSON text of the data object
  int64_t modified_ms = 0;  // when it last changed, Unix time in ms; 0: unknown (written before it was kept)
};

enum class ChangeKind : uint8_t { kPut = 1, kPatch = 2, kDelete = 3 };

// One entry of the change log: what one write did to one document. Written in the same
// atomic Write as the document, so a crash never keeps one without the other.
struct Change {
  uint64_t seq = 0;  // strictly increasing over the whole store, never reused
  int64_t time_ms = 0;
  std::string twin;
  std::string doc;
  ChangeKind kind = ChangeKind::kPut;
  std::string source;    // the API that made it ("mqtt", "rest"), as the engine's caller said
  std::string origin;    // who made it (an MQTT client id), empty when nobody in particular
  uint64_t version = 0;  // after a put or patch; the last version for a delete
  std::string data;      // the document's data after a put or patch; empty for a delete
};

// One change to one document: its new content, or its deletion, and its change-log entry.
struct DocumentWrite {
  std::string twin;
  std::string doc;
  std::optional<StoredDocument> document;  // nullopt deletes
  std::shared_ptr<const Change> change;    // nullptr: no log entry (tests, imports)
};

// A watch: `watcher` (an opaque key chosen by the caller, e.g. an MQTT client id) wants to
// hear of every change of one document. `value` is the caller's, kept verbatim.
struct WatchRecord {
  std::string twin;
  std::string doc;
  std::string watcher;
  std::string value;
  // Not stored: the newest seq when the watch was registered, whose effects its reply showed
  // (0 for watches read at start-up). Changes with a larger seq are news to the watcher.
  uint64_t since = 0;
};

// The change log's retained entries: seqs oldest..newest, none when oldest > newest.
struct ChangeBounds {
  uint64_t oldest = 1;
  uint64_t newest = 0;
};

// Every method is safe to call from several threads at once. A write is durable once Sync()
// has returned after it: it then survives a crash of the process (and, with sync writes, of
// the machine). Writes before one Sync() share one log write (group commit).
// Figures for monitoring, read while the store is in use.
struct StoreStats {
  uint64_t cache_hits = 0;      // reads answered by the document cache
  uint64_t cache_misses = 0;    // reads that went to the database
  uint64_t write_failures = 0;  // writes, log writes and flushes the database refused
  bool below_reserve = false;   // puts refused: the disk has less than the free-space reserve
  bool stopped = false;         // every write refused after a failure, until the store recovers
  uint64_t disk_bytes = 0;      // size of the database's files
};

struct ContentCounts {
  uint64_t twins = 0;      // twins with at least one document
  uint64_t documents = 0;  // documents of all twins, _config included
};

class DocumentStore {
 public:
  virtual ~DocumentStore() = default;

  // nullopt when the document does not exist.
  virtual Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const = 0;
  // Applies the writes in order, all or none.
  virtual Status Write(std::vector<DocumentWrite> writes) = 0;
  // Document names of one twin, sorted bytewise; empty for an unknown twin.
  virtual Result<std::vector<std::string>> List(std::string_view twin) const = 0;
  // Deletes every document of one twin atomically.
  virtual Status DeleteAll(std::string_view twin) = 0;
  // Makes every write that returned before it durable.
  virtual Status Sync() = 0;
  // Whether a write may be tried now: Ok, or why not. `grows` is true for a put (deletions
  // shrink the database): those are refused with kInsufficientStorage while the disk is below
  // the store's free-space reserve. After a failed write every write is refused with the
  // failure's status until the store has recovered, which this call tries when the disk has
  // room again (at most every few hundred ms). Cheap otherwise: no system call per call.
  virtual Status Writable(bool /*grows*/) { return Status::Ok(); }
  // How many twins have at least one document. Reads the whole key space: for start-up.
  virtual Result<uint64_t> CountTwins() const { return Status::Internal("this store cannot count twins"); }
  // Twins and documents, by reading every key (writes not yet in the store may be missed):
  // for a background thread, not for the request path.
  virtual Result<ContentCounts> CountContents() const { return Status::Internal("this store cannot count"); }
  // Cheap: no scan (the disk size is a directory listing).
  virtual StoreStats Stats() const { return {}; }

  // The change log. Entries are kept while the log is within the store's retention bound
  // (the oldest go first; the newest is always kept, so that seq never goes back).
  virtual ChangeBounds Changes() const { return {}; }
  // Entries with seq > after, in seq order, at most max_count (and about max_bytes of data,
  // at least one). Only what Sync() made durable is guaranteed to be there.
  virtual Result<std::vector<Change>> ReadChanges(uint64_t /*after*/, size_t /*max_count*/,
                                                  size_t /*max_bytes*/) const {
    return std::vector<Change>();
  }
  // For an import into a store whose log never had an entry: the log goes on after `seq` (the
  // next entry is seq + 1; Changes() is {seq + 1, seq} until then). Durable at the next Sync().
  virtual Status StartChangeLogAfter(uint64_t /*seq*/) {
    return Status::Internal("this store cannot start its change log after a seq");
  }
  // The retained entry that made version `version` of a document (a put or patch), if any.
  virtual Result<std::optional<Change>> FindVersion(std::string_view /*twin*/, std::string_view /*doc*/,
                                                    uint64_t /*version*/) const {
    return std::optional<Change>();
  }
  // The oldest version of the document the log retains, 0 when none.
  virtual Result<uint64_t> OldestVersion(std::string_view /*twin*/, std::string_view /*doc*/) const {
    return uint64_t{0};
  }

  // Watches, kept apart from the documents: they outlive the deletion of their document.
  // Durable, like writes, at the next Sync().
  virtual Status PutWatch(const WatchRecord& /*watch*/) { return Status::Internal("this store keeps no watches"); }
  virtual Status DeleteWatch(std::string_view /*twin*/, std::string_view /*doc*/, std::string_view /*watcher*/) {
    return Status::Internal("this store keeps no watches");
  }
  // Every watch of every twin: for start-up.
  virtual Result<std::vector<WatchRecord>> ListWatches() const { return std::vector<WatchRecord>(); }

  Status Put(std::string_view twin, std::string_view doc, StoredDocument document) {
    return WriteOne({std::string(twin), std::string(doc), std::move(document), nullptr});
  }
  Status Delete(std::string_view twin, std::string_view doc) {
    return WriteOne({std::string(twin), std::string(doc), std::nullopt, nullptr});
  }

 private:
  Status WriteOne(DocumentWrite write) {
    std::vector<DocumentWrite> writes;
    writes.push_back(std::move(write));
    return Write(std::move(writes));
  }
};

// Puts a document cache and a write queue in front of `store`: a write costs its caller a
// memory copy, and the queue goes to the store in one batch at the next Sync() (the broker's
// group commit) or when it grows long. A batch costs the store one write, not one per document.
// - Reads see every write at once: written documents stay in the cache until the store has
//   them, and recently read or written ones stay within capacity_bytes (least recently used out).
// - A write the store refuses (I/O error, full disk) drops the cache, so reads show what the
//   store holds, and fails Sync() and every later write with that error until Writable()
//   finds the store writable again.
// It stays exact only if every write goes through it and writes to one document are
// serialised by the caller (the engine's locks).
std::unique_ptr<DocumentStore> WithWriteBehindCache(std::unique_ptr<DocumentStore> store, size_t capacity_bytes);

struct RocksDbOptions {
  std::string path;
  bool sync_writes = false;  // fsync the WAL on every write (power-loss durability)
  // Bounds RocksDB's memory, whatever the number of twins: its block cache and write buffers.
  size_t cache_bytes = 32 << 20;
  // Puts are refused while the filesystem of `path` has less free space (0: no reserve).
  uint64_t min_free_bytes = 0;
  // The change log keeps its newest entries within about this many bytes.
  uint64_t changelog_bytes = 64 << 20;
  LogFn log;  // RocksDB's warnings and errors, and the store's stops and recoveries; none when empty
};

// Opens (creating if missing) a RocksDB database; the caller puts a cache in front of it
// (WithWriteBehindCache) if it wants one. Refuses a database written with an unknown schema.
// A failed write (a full disk, an I/O error) stops its writes, reads go on; Writable() then
// resumes RocksDB (DB::Resume) once the disk has room, tried at most every 250 ms. RocksDB's
// own recovery, which polls every 5 s, is turned off. The log of RocksDB is never written
// again after it failed (RocksDB 7.8 then refuses to recover; with a LOG file it aborts).
Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options);
inline Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(std::string path) {
  RocksDbOptions options;
  options.path = std::move(path);
  return OpenRocksDbStore(options);
}

}  // namespace twins
