// The twin engine: Cloud Twins rules over a DocumentStore. Knows nothing of MQTT or HTTP.
//
// Thread-safety: every method may be called from any thread at once. Writes to one twin
// are serialised by a lock stripe chosen by twin id, so a read-modify-write (version check,
// merge, quota) is atomic and versions stay contiguous; different twins proceed in parallel.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/batch_runner.hpp"
#include "engine/config_cache.hpp"
#include "store/document_store.hpp"
#include "engine/json.hpp"
#include "common/status.hpp"
#include "engine/twin_config.hpp"

namespace twins {

struct Limits {
  size_t max_document_bytes = 64 * 1024;  // compact JSON of `data`
  int max_depth = 32;                     // nesting of objects/arrays in `data`, itself included
  size_t max_documents = 64;              // per twin, `_config` not counted
  size_t max_twins = 0;                   // twins with any document, `_config` included; 0: no limit
  size_t max_config_bytes = 8192;         // compact JSON of a `_config`'s `data`

  // Larger request bodies are refused unread; headroom for whitespace and the envelope.
  size_t max_request_bytes() const { return 2 * max_document_bytes + 4096; }
};

using Document = StoredDocument;

// {"version":N,"data":{...}}, the in-band reply payload.
std::string DocumentJson(const Document& document);

// What a write expects of the document's current version. Checked atomically with the write.
struct VersionCondition {
  VersionCondition() = default;
  VersionCondition(uint64_t expected_version) : version(expected_version) {}  // NOLINT: a version is a condition

  uint64_t version = 0;  // the body's "version": 0 means no check
  // An HTTP If-Match: the document must exist, at one of these versions (at any version when
  // the list is empty). `describe` says what was expected, for the error ("*", "3 or 5").
  bool must_exist = false;
  std::vector<uint64_t> one_of;
  std::string describe;
};

// A put or patch body, {"version"?: N, "data": {...}}, and the caller's version condition.
struct WriteRequest {
  VersionCondition expected;      // expected.version is the body's version (0: none)
  std::string data;               // checked, in the stored form (see request_body.hpp)
  std::string reserved_key_path;  // of the first key starting with '_', refused outside `_config`
};

// Whose body it is: a put or patch needs `data`; a delete's `data` is not read, and its empty
// body means "no version check".
enum class BodyOf { kPutOrPatch, kDelete };

// Parses a put, patch or delete body.
Result<WriteRequest> ParseWriteRequest(std::string_view body, const Limits& limits, BodyOf kind = BodyOf::kPutOrPatch);

// When a write must be durable: before the call returns, or at the caller's next Sync()
// (group commit: the broker thread syncs once per event-loop pass, before replies leave).
enum class Durability { kBeforeReturn, kAtSync };

// Who makes a write, and when it must be durable: for the change log and the observers.
struct WriteContext {
  WriteContext() = default;
  WriteContext(Durability when) : durability(when) {}  // NOLINT: the common case names only durability
  WriteContext(Durability when, std::string_view api, std::string_view who)
      : durability(when), source(api), origin(who) {}

  Durability durability = Durability::kBeforeReturn;
  std::string_view source = "rest";  // the API, as the change log names it ("mqtt", "rest")
  std::string_view origin = {};      // who (an MQTT client id); empty for nobody in particular
};

// What a successful write changed, for observers such as the time-series push and the
// change propagation.
struct WriteEvent {
  std::string_view twin;
  std::string_view document;
  const StoredDocument* before;  // nullptr when the write created the document
  std::string_view request;      // the request's `data` (the patch, for a patch), compact JSON; empty for a delete
  const StoredDocument* after;   // the document after the write; nullptr for a delete
  const Change* change;          // its change-log entry (seq, time, source, origin)
  Durability durability;         // kAtSync: durable only once OnDurable(seq >= change->seq) came
  // Only for a put or patch of another document than `_config`: the twin's `_config`, parsed
  // (empty when it has none), as it is when the write is made. nullptr when it could not be
  // read, and then config_error says why.
  const TwinConfig* config = nullptr;
  const Status* config_error = nullptr;
};

class WriteObserver {
 public:
  virtual ~WriteObserver() = default;
  // Called after the store accepted the write, under the twin's write lock (so events of one
  // twin arrive in version order, and all events in seq order). Must be quick and must not
  // call into the engine.
  virtual void OnWrite(const WriteEvent& event) noexcept = 0;
  // Every change with seq <= `seq` is durable (after a successful Sync).
  virtual void OnDurable(uint64_t /*seq*/) noexcept {}
  // A Sync failed: changes with seq <= `seq` not reported durable may be lost.
  virtual void OnLost(uint64_t /*seq*/) noexcept {}
  // With a store shared with other processes: a change another process made, committed, in
  // seq order (Engine::CatchUp). Not this process's own writes, which come through OnWrite.
  virtual void OnChangeElsewhere(const Change& /*change*/) noexcept {}
};

class Engine {
 public:
  // With limits.max_twins, counts the store's twins (a seek per twin, and a list per watched
  // twin: one with watches and no document is a twin too); a failure to count is
  // kept in start_status() and refuses every creation of a twin.
  Engine(std::unique_ptr<DocumentStore> store, Limits limits);

  const Status& start_status() const { return start_status_; }
  // Twins with at least one document or watch, counted only with limits.max_twins (0 otherwise).
  uint64_t twins() const { return twins_.load(); }

  const Limits& limits() const { return limits_; }
  // Added before the engine is shared between threads; called in the order added.
  void AddObserver(WriteObserver* observer) { observers_.push_back(observer); }
  void RemoveObserver(WriteObserver* observer) {
    observers_.erase(std::remove(observers_.begin(), observers_.end(), observer), observers_.end());
  }

  // Under the twin's lock: waits for a write of that twin under way on another thread.
  Result<Document> Get(std::string_view twin, std::string_view doc) const;
  // The document as it was at `version`: the current one, or from the change log while it
  // retains it; NotFound otherwise, naming the oldest version retained.
  Result<Document> GetVersion(std::string_view twin, std::string_view doc, uint64_t version) const;
  // Replaces the document (creating it at version 1).
  Result<Document> Put(std::string_view twin, std::string_view doc, const WriteRequest& request,
                       const WriteContext& context = {});
  // Merges into the document (creating it at version 1).
  Result<Document> Patch(std::string_view twin, std::string_view doc, const WriteRequest& request,
                         const WriteContext& context = {});
  // Returns the document as it was before deletion.
  Result<Document> Delete(std::string_view twin, std::string_view doc, const VersionCondition& expected,
                          const WriteContext& context = {});
  Result<std::vector<std::string>> List(std::string_view twin) const;
  // Deletes every document of the twin at once (one change-log entry each); succeeds on a
  // twin without documents. Durable before it returns.
  Status DeleteAll(std::string_view twin, const WriteContext& context = {});
  // Makes every kAtSync write that returned before it durable, then tells the observers.
  // When it fails, the watches and unwatches it covered are undone in memory (their callers
  // answer with its error; see Watch).
  // `settle`, when given, hears the store's answer first (BatchRunner: replies before pushes).
  // With a batch runner, a call from another thread does nothing: every call waited already.
  Status Sync(const std::function<void(const Status&)>& settle = {});

  // For a store shared with other processes (PostgreSQL, several brokers). Set before the
  // engine is shared between threads: from then on every call runs on the runner's batch
  // thread, a call from another thread waiting for its batch; durability is the batch's.
  void SetBatchRunner(BatchRunner* runner) { runner_ = runner; }
  // Batch thread, at the start of a batch: the changes other processes committed since the
  // engine last heard, in seq order; `locked_seq`: the store's newest seq when the batch holds
  // its write lock (the next seqs are the engine's to give); `gap`: changes were trimmed from
  // the log unheard, so nothing cached may be trusted.
  void CatchUp(const std::vector<Change>& elsewhere, std::optional<uint64_t> locked_seq, bool gap);
  // Batch thread: the twin's watches as the store holds them (other processes add and remove
  // them). A watch already known keeps its `since`; one learnt here has since 0.
  void ReplaceWatches(std::string_view twin, const std::vector<WatchRecord>& watches);
  // Batch thread: every watch, as the store holds them (after a reconnection or a failed batch).
  void ReplaceAllWatches(const std::map<std::string, std::vector<WatchRecord>>& watches);

  // The change log: every change, with a seq that increases over the whole store.
  // The entries retained and durable: oldest..newest.
  ChangeBounds Changes() const;
  // Durable entries after `after`, in seq order: at most max_count, about max_bytes.
  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const;
  // Waits until an entry after `after` is durable or `deadline` passes; the newest durable seq.
  uint64_t WaitForChanges(uint64_t after, std::chrono::steady_clock::time_point deadline) const;
  // Whether other processes write to the store too (a batch runner is set): a seq this engine
  // has not heard of yet may then exist, heard of within the runner's catch-up.
  bool Shared() const { return runner_ != nullptr; }
  // Wakes every WaitForChanges (at shutdown).
  void WakeWaiters() const;

  // Watches: `watcher` (the caller's key, e.g. an MQTT client id) registers for the changes of
  // one document; `value` is the caller's, kept with it. The document is read under the same
  // lock as the registration, so no write falls between the two. Returns the document, or
  // version 0 with data {} when it does not exist. A twin has at most max_documents + 1
  // watched (document, watcher) pairs. A watch or unwatch takes effect at once, and is undone
  // if the Sync that makes it durable fails (kBeforeReturn: its own); the store may still have
  // kept it (a failed write is uncertain), which a restart then reads.
  Result<Document> Watch(std::string_view twin, std::string_view doc, std::string_view watcher, std::string_view value,
                         Durability durability = Durability::kBeforeReturn);
  // Ok also when there was no such watch.
  Status Unwatch(std::string_view twin, std::string_view doc, std::string_view watcher,
                 Durability durability = Durability::kBeforeReturn);
  // The watches of one document, with the seq each was registered at. Cheap (memory).
  std::vector<WatchRecord> Watches(std::string_view twin, std::string_view doc) const;
  // Whether the document has any watch: a lookup, no copy (the write path asks it).
  bool IsWatched(std::string_view twin, std::string_view doc) const;
  // Whether any document has a watch (a quick check before copying a change).
  bool HasWatches() const { return watch_count_.load(std::memory_order_relaxed) > 0; }
  // For monitoring: see DocumentStore::Stats and CountContents (a scan: not on the request path).
  StoreStats store_stats() const { return store_->Stats(); }
  Result<ContentCounts> CountContents() const { return store_->CountContents(); }
  // Whether writes that add data are accepted now: Ok, or the store's reason (a failed disk,
  // the free-space reserve reached). Cheap (see DocumentStore::Writable); any thread.
  Status Writable() { return store_->Writable(true); }
  // The twin's parsed `_config` (empty when it has none). `_config` is parsed when it is
  // written and kept (ConfigCache), so this costs a lookup, not a parse.
  Result<TwinConfig> Config(std::string_view twin) const;

 private:
  enum class Mode { kPut, kPatch };
  Result<Document> Write(std::string_view twin, std::string_view doc, const WriteRequest& request, Mode mode,
                         const WriteContext& context);
  Status Persist(Durability durability) {
    return Effective(durability) == Durability::kBeforeReturn ? Sync() : Status::Ok();
  }
  // With a batch runner: whether this thread is its batch thread, or another that must hand
  // its call over (InBatch).
  bool OnBatchThread() const { return runner_ != nullptr && runner_->OnBatchThread(); }
  bool Elsewhere() const { return runner_ != nullptr && !runner_->OnBatchThread(); }
  // On the batch thread a write is durable only at the batch's Sync, whatever its caller said.
  Durability Effective(Durability asked) const { return OnBatchThread() ? Durability::kAtSync : asked; }
  // Runs `call` in a batch and waits: its result, or the batch's failure when it wrote.
  template <typename T, typename F>
  T InBatch(const BatchHint& hint, F&& call) const {
    std::optional<T> result;
    const Status committed = runner_->RunAndWait(hint, [&] { result.emplace(call()); });
    if (!result) return committed.ok() ? Status::Internal("the call did not run") : committed;
    // A batch that did not commit fails every call in it: even a read may have shown one of
    // its writes (the batch's own, never committed).
    if (result->ok() && !committed.ok()) return committed;
    return std::move(*result);
  }
  // Gives each write its change-log entry (the next seqs, in order) and hands them to the
  // store, under commit_mutex_ so that the store receives them in seq order.
  // `deleted` holds the last version of each deleted document, in the order of `writes`.
  Status Commit(std::vector<DocumentWrite>& writes, ChangeKind kind, const WriteContext& context,
                std::vector<std::shared_ptr<const Change>>* changes, const std::vector<uint64_t>& deleted = {});
  void Notify(const WriteEvent& event) const;
  std::mutex& LockFor(std::string_view twin) const;
  // Counts one more twin, unless max_twins are there already.
  Status ReserveTwin();
  // Whether the twin has a watch (a twin without documents but with watches counts for max_twins).
  bool HasTwinWatches(std::string_view twin) const;
  // After a twin lost its last document or watch (or may have), with its lock held; whether
  // it was no longer counted.
  bool ForgetTwinIfEmpty(std::string_view twin);
  // The twin's configuration, from the cache or read and cached; the twin's lock must be held.
  Result<std::shared_ptr<const TwinConfig>> LoadConfig(std::string_view twin) const;

  std::unique_ptr<DocumentStore> store_;
  const Limits limits_;
  BatchRunner* runner_ = nullptr;
  Status start_status_;
  // Exact under concurrent creations of different twins: a creation reserves its slot with a
  // compare-and-swap before writing, and gives it back if the store refused the write.
  std::atomic<uint64_t> twins_{0};
  mutable std::array<std::mutex, 64> stripes_;
  std::vector<WriteObserver*> observers_;
  mutable ConfigCache configs_{4 << 20};

  std::mutex commit_mutex_;  // seq assignment and the store's write order
  uint64_t last_seq_ = 0;    // guarded by commit_mutex_
  std::mutex sync_mutex_;    // one Sync at a time, so durable_seq_ only grows
  mutable std::mutex durable_mutex_;
  mutable std::condition_variable durable_cv_;
  uint64_t durable_seq_ = 0;  // guarded by durable_mutex_
  mutable uint64_t wake_generation_ = 0;

  // Watches by twin, then by (document, watcher); guarded by watches_mutex_.
  mutable std::mutex watches_mutex_;
  struct WatchState {
    std::string value;
    uint64_t since = 0;
  };
  std::map<std::string, std::map<std::pair<std::string, std::string>, WatchState>, std::less<>> watches_;
  std::atomic<size_t> watch_count_{0};
  // What each watch and unwatch since the last Sync replaced, newest last, for a failed Sync
  // to put back; guarded by watches_mutex_.
  struct WatchUndo {
    std::string twin;
    std::pair<std::string, std::string> key;  // (document, watcher)
    std::optional<WatchState> before;         // nullopt: there was no such watch
    bool uncounted = false;                   // the unwatch took the twin out of twins_
  };
  std::vector<WatchUndo> unsynced_watches_;
  void UndoWatches(std::vector<WatchUndo> undo);
};

}  // namespace twins
