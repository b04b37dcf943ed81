// The twin engine: Cloud Twins rules over a DocumentStore. Knows nothing of MQTT or HTTP.
//
// Thread-safety: every method may be called from any thread at once. Writes to one twin
// are serialised by a lock stripe chosen by twin id, so a read-modify-write (version check,
// merge, quota) is atomic and versions stay contiguous; different twins proceed in parallel.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

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

// A put or patch body, {"version"?: N, "data": {...}}. version 0 means "no check".
struct WriteRequest {
  uint64_t version = 0;
  std::string data;               // checked, in the stored form (see request_body.hpp)
  std::string reserved_key_path;  // of the first key starting with '_', refused outside `_config`
};

// Whose body it is: a put or patch needs `data`; a delete's `data` is not read, and its empty
// body means "no version check".
enum class BodyOf { kPutOrPatch, kDelete };

// Parses a put, patch or delete body.
Result<WriteRequest> ParseWriteRequest(std::string_view body, const Limits& limits, BodyOf kind = BodyOf::kPutOrPatch);

// What a successful put or patch changed, for observers such as the time-series push.
struct WriteEvent {
  std::string_view twin;
  std::string_view document;
  const StoredDocument* before;  // nullptr when the write created the document
  std::string_view request;      // the request's `data` (the patch, for a patch), compact JSON
  const StoredDocument* after;   // the document after the write
  // Only when an observer is installed, and not for a write of `_config` itself: the twin's
  // `_config`, parsed (empty when it has none), as it is when the write is made. nullptr
  // when it could not be read, and then config_error says why.
  const TwinConfig* config = nullptr;
  const Status* config_error = nullptr;
};

class WriteObserver {
 public:
  virtual ~WriteObserver() = default;
  // Called after the store accepted the write, under the twin's write lock (so events of one
  // twin arrive in version order). For Durability::kBeforeReturn the write is durable by
  // then; for kAtSync only at the caller's next Sync(), so whatever the observer sends out
  // must wait for it (the plugin holds samples until its tick). Must be quick and must not
  // call back into the engine's writes.
  virtual void OnWrite(const WriteEvent& event) noexcept = 0;
};

// When a write must be durable: before the call returns, or at the caller's next Sync()
// (group commit: the broker thread syncs once per event-loop pass, before replies leave).
enum class Durability { kBeforeReturn, kAtSync };

class Engine {
 public:
  // With limits.max_twins, counts the store's twins (a seek per twin); a failure to count is
  // kept in start_status() and refuses every creation of a twin.
  Engine(std::unique_ptr<DocumentStore> store, Limits limits);

  const Status& start_status() const { return start_status_; }
  // Twins with at least one document, counted only with limits.max_twins (0 otherwise).
  uint64_t twins() const { return twins_.load(); }

  const Limits& limits() const { return limits_; }
  // Set once, before the engine is shared between threads; nullptr for none.
  void SetObserver(WriteObserver* observer) { observer_ = observer; }

  Result<Document> Get(std::string_view twin, std::string_view doc) const;
  // Replaces the document (creating it at version 1).
  Result<Document> Put(std::string_view twin, std::string_view doc, const WriteRequest& request,
                       Durability durability = Durability::kBeforeReturn);
  // Merges into the document (creating it at version 1).
  Result<Document> Patch(std::string_view twin, std::string_view doc, const WriteRequest& request,
                         Durability durability = Durability::kBeforeReturn);
  // Returns the document as it was before deletion.
  Result<Document> Delete(std::string_view twin, std::string_view doc, uint64_t expected_version,
                          Durability durability = Durability::kBeforeReturn);
  Result<std::vector<std::string>> List(std::string_view twin) const;
  // Succeeds on a twin without documents.
  Status DeleteAll(std::string_view twin);
  // Makes every kAtSync write that returned before it durable.
  Status Sync() { return store_->Sync(); }
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
                         Durability durability);
  Status Persist(Durability durability) {
    return durability == Durability::kBeforeReturn ? store_->Sync() : Status::Ok();
  }
  std::mutex& LockFor(std::string_view twin) const;
  // Counts one more twin, unless max_twins are there already.
  Status ReserveTwin();
  // After a twin lost its last document (or may have), with its lock held.
  void ForgetTwinIfEmpty(std::string_view twin);
  // The twin's configuration, from the cache or read and cached; the twin's lock must be held.
  Result<std::shared_ptr<const TwinConfig>> LoadConfig(std::string_view twin) const;

  std::unique_ptr<DocumentStore> store_;
  const Limits limits_;
  Status start_status_;
  // Exact under concurrent creations of different twins: a creation reserves its slot with a
  // compare-and-swap before writing, and gives it back if the store refused the write.
  std::atomic<uint64_t> twins_{0};
  mutable std::array<std::mutex, 64> stripes_;
  WriteObserver* observer_ = nullptr;
  mutable ConfigCache configs_{4 << 20};
};

}  // namespace twins
