#include "engine/engine.hpp"

#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>

#include "engine/merge.hpp"
#include "engine/names.hpp"
#include "engine/request_body.hpp"

namespace twins {
namespace {

Status ValidateNames(std::string_view twin, std::string_view doc) {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  return ValidateDocumentName(doc);
}

// The whole version rule: an If-Match condition first (the document must exist, at one of
// the listed versions), then the body's version.
Status CheckVersion(const VersionCondition& expected, bool exists, uint64_t actual) {
  if (expected.must_exist) {
    const auto& one_of = expected.one_of;
    const bool listed = one_of.empty() || std::find(one_of.begin(), one_of.end(), actual) != one_of.end();
    if (!exists || !listed) return Status::VersionMismatch(expected.describe, exists ? actual : 0);
  }
  if (expected.version != 0 && expected.version != actual) return Status::VersionMismatch(expected.version, actual);
  return Status::Ok();
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string DocumentJson(const Document& document) {
  std::string out;
  out.reserve(document.data.size() + 40);
  out += "{\"version\":";
  out += std::to_string(document.version);
  out += ",\"data\":";
  out += document.data;
  out += '}';
  return out;
}

Result<WriteRequest> ParseWriteRequest(std::string_view body, const Limits& limits, BodyOf kind) {
  const bool data_required = kind == BodyOf::kPutOrPatch;
  WriteRequest request;
  if (body.empty() && !data_required) return request;
  if (body.size() > limits.max_request_bytes()) {
    return Status::InvalidArgument("data", "request of " + std::to_string(body.size()) +
                                               " bytes is larger than the limit of " +
                                               std::to_string(limits.max_request_bytes()));
  }
  auto parsed = ParseRequestBody(body, data_required, "data");
  if (!parsed.ok()) return parsed.status();
  using Version = RequestBody::Version;
  if (parsed->version_kind == Version::kOther) {
    return Status::InvalidArgument("version", "version must be an integer from 0 to 2^53");
  }
  if (parsed->version_kind == Version::kNumber) request.expected.version = parsed->version;
  if (!data_required) return request;
  if (!parsed->data) return Status::InvalidArgument("data", "data is required");
  if (!parsed->data_is_object) return Status::InvalidArgument("data", "data must be a JSON object");
  if (parsed->data_depth > limits.max_depth) {
    return Status::InvalidArgument("data", "data nests deeper than " + std::to_string(limits.max_depth) + " levels");
  }
  if (!parsed->data_error.ok()) return parsed->data_error;
  request.data = std::move(*parsed->data);
  request.reserved_key_path = std::move(parsed->reserved_key_path);
  return request;
}

Engine::Engine(std::unique_ptr<DocumentStore> store, Limits limits) : store_(std::move(store)), limits_(limits) {
  last_seq_ = durable_seq_ = store_->Changes().newest;
  auto watches = store_->ListWatches();
  if (watches.ok()) {
    for (WatchRecord& watch : *watches) {
      watches_[watch.twin][{std::move(watch.doc), std::move(watch.watcher)}] = {std::move(watch.value), 0};
      ++watch_count_;
    }
  } else {
    start_status_ = Status::Internal("cannot read the watches: " + watches.status().message());
  }
  if (limits_.max_twins == 0) return;
  auto twins = store_->CountTwins();
  if (twins.ok()) {
    twins_ = *twins;
  } else if (start_status_.ok()) {
    start_status_ = Status::Internal("cannot count the twins: " + twins.status().message());
  }
  // A twin with watches and no document is a twin too.
  for (const auto& watched : watches_) {
    auto names = store_->List(watched.first);
    if (names.ok() && names->empty()) ++twins_;
  }
}

bool Engine::HasTwinWatches(std::string_view twin) const {
  std::lock_guard<std::mutex> lock(watches_mutex_);
  return watches_.find(twin) != watches_.end();
}

Status Engine::ReserveTwin() {
  if (!start_status_.ok()) return start_status_;
  uint64_t twins = twins_.load();
  do {
    if (twins >= limits_.max_twins) return Status::QuotaExceeded("twins", limits_.max_twins, twins);
  } while (!twins_.compare_exchange_weak(twins, twins + 1));
  return Status::Ok();
}

bool Engine::ForgetTwinIfEmpty(std::string_view twin) {
  if (limits_.max_twins == 0) return false;
  auto names = store_->List(twin);
  if (!names.ok() || !names->empty() || HasTwinWatches(twin)) return false;
  --twins_;
  return true;
}

std::mutex& Engine::LockFor(std::string_view twin) const {
  return stripes_[std::hash<std::string_view>()(twin) % stripes_.size()];
}

Result<Document> Engine::Get(std::string_view twin, std::string_view doc) const {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (Elsewhere())
    return InBatch<Result<Document>>({std::string(twin), std::string(doc), false}, [&] { return Get(twin, doc); });
  // Under the twin's lock, a read never shows a write that another thread is still making
  // durable: its observers have seen it first (a device that reads version N is pushed no
  // version before N after that reply).
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto found = store_->Get(twin, doc);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return Status::NotFound("document not found");
  return std::move(**found);
}

Result<Document> Engine::Put(std::string_view twin, std::string_view doc, const WriteRequest& request,
                             const WriteContext& context) {
  return Write(twin, doc, request, Mode::kPut, context);
}

Result<Document> Engine::Patch(std::string_view twin, std::string_view doc, const WriteRequest& request,
                               const WriteContext& context) {
  return Write(twin, doc, request, Mode::kPatch, context);
}

Status Engine::Commit(std::vector<DocumentWrite>& writes, ChangeKind kind, const WriteContext& context,
                      std::vector<std::shared_ptr<const Change>>* changes, const std::vector<uint64_t>& deleted) {
  const int64_t now = NowMs();
  std::lock_guard<std::mutex> lock(commit_mutex_);
  uint64_t seq = last_seq_;
  for (size_t i = 0; i < writes.size(); ++i) {
    DocumentWrite& write = writes[i];
    auto change = std::make_shared<Change>();
    change->seq = ++seq;
    change->time_ms = now;
    change->twin = write.twin;
    change->doc = write.doc;
    change->kind = kind;
    change->source = std::string(context.source);
    change->origin = std::string(context.origin);
    if (write.document) {
      write.document->modified_ms = now;
      change->version = write.document->version;
      change->data = write.document->data;
    } else if (i < deleted.size()) {
      change->version = deleted[i];
    }
    changes->push_back(change);
    write.change = std::move(change);
  }
  Status s = store_->Write(writes);
  // Spent even when the write is refused: the store may hold the entries all the same (a
  // queue applied before another batch's failure was reported), and a seq is never reused.
  last_seq_ = seq;
  return s;
}

void Engine::Notify(const WriteEvent& event) const {
  for (WriteObserver* observer : observers_) observer->OnWrite(event);
}

Status Engine::Sync(const std::function<void(const Status&)>& settle) {
  if (Elsewhere()) return Status::Ok();
  std::lock_guard<std::mutex> sync_lock(sync_mutex_);
  uint64_t upto;
  {
    std::lock_guard<std::mutex> lock(commit_mutex_);
    upto = last_seq_;
  }
  std::vector<WatchUndo> watches;
  {
    std::lock_guard<std::mutex> lock(watches_mutex_);
    watches.swap(unsynced_watches_);
  }
  Status s = store_->Sync();
  if (!s.ok()) {
    UndoWatches(std::move(watches));  // before the callers hear of the failure
    if (settle) settle(s);
    for (WriteObserver* observer : observers_) observer->OnLost(upto);
    return s;
  }
  // The change log shows the writes before their callers hear they are done (a caller then
  // finds them in ReadChanges), and the observers (pushes) hear of them after the callers.
  bool advanced = false;
  {
    std::lock_guard<std::mutex> lock(durable_mutex_);
    advanced = upto > durable_seq_;
    if (advanced) durable_seq_ = upto;
  }
  if (advanced) durable_cv_.notify_all();
  if (settle) settle(s);
  if (!advanced) return s;
  for (WriteObserver* observer : observers_) observer->OnDurable(upto);
  return s;
}

Result<Document> Engine::Write(std::string_view twin, std::string_view doc, const WriteRequest& request, Mode mode,
                               const WriteContext& context) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (Elsewhere()) {
    return InBatch<Result<Document>>({std::string(twin), std::string(doc), true},
                                     [&] { return Write(twin, doc, request, mode, context); });
  }
  const Durability durability = Effective(context.durability);
  if (request.data.empty() || request.data[0] != '{') {
    return Status::InvalidArgument("data", "data must be a JSON object");
  }
  const bool is_config = doc == kConfigDocument;
  if (!is_config && !request.reserved_key_path.empty()) {
    return Status::InvalidArgument("data", request.reserved_key_path + ": keys starting with '_' are reserved");
  }
  s = store_->Writable(true);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto current = store_->Get(twin, doc);
  if (!current.ok()) return current.status();
  const bool exists = current->has_value();
  const uint64_t version = exists ? (*current)->version : 0;
  s = CheckVersion(request.expected, exists, version);
  if (!s.ok()) return s;

  bool new_twin = false;
  if (!exists && (!is_config || limits_.max_twins > 0)) {
    auto names = store_->List(twin);
    if (!names.ok()) return names.status();
    size_t documents = names->size();
    for (const std::string& name : *names) documents -= name == kConfigDocument ? 1 : 0;
    if (!is_config && documents >= limits_.max_documents) {
      return Status::QuotaExceeded("twin_documents", limits_.max_documents, documents);
    }
    new_twin = limits_.max_twins > 0 && names->empty() && !HasTwinWatches(twin);
  }

  Document next{version + 1, {}};
  if (mode == Mode::kPatch) {
    s = MergePatch(exists ? std::string_view((*current)->data) : std::string_view("{}"), request.data, &next.data,
                   limits_.max_document_bytes);
    if (!s.ok()) return s;
  } else {
    next.data = request.data;
  }
  if (next.data.size() > limits_.max_document_bytes) {
    return Status::InvalidArgument("data", "document of " + std::to_string(next.data.size()) +
                                               " bytes is larger than the limit of " +
                                               std::to_string(limits_.max_document_bytes));
  }
  std::shared_ptr<const TwinConfig> config;
  if (is_config) {
    // Refused before it is parsed: every write of the twin may consult it.
    if (next.data.size() > limits_.max_config_bytes) {
      return Status::InvalidArgument("data", "_config of " + std::to_string(next.data.size()) +
                                                 " bytes is larger than the limit of " +
                                                 std::to_string(limits_.max_config_bytes) + " (max_config_bytes)");
    }
    Json parsed(cJSON_Parse(next.data.c_str()));
    auto checked = ParseTwinConfig(parsed.get());
    if (!checked.ok()) return checked.status();
    config = std::make_shared<const TwinConfig>(std::move(checked).value());
  }
  if (new_twin) {
    s = ReserveTwin();
    if (!s.ok()) return s;
  }
  std::vector<DocumentWrite> writes(1);
  writes[0] = {std::string(twin), std::string(doc), std::move(next), nullptr};
  std::vector<std::shared_ptr<const Change>> changes;
  s = Commit(writes, mode == Mode::kPatch ? ChangeKind::kPatch : ChangeKind::kPut, context, &changes);
  if (!s.ok()) {
    if (new_twin) --twins_;  // refused: the twin was not created
    return s;
  }
  next = std::move(*writes[0].document);
  // A failed sync leaves the write uncertain: the twin stays counted (the stricter error).
  s = Persist(durability);
  if (!s.ok()) return s;
  if (is_config) configs_.Set(twin, std::move(config), next.data.size());
  if (!observers_.empty()) {
    WriteEvent event{twin, doc, exists ? &**current : nullptr, request.data, &next, changes[0].get(), durability};
    std::optional<Result<std::shared_ptr<const TwinConfig>>> twin_config;
    if (!is_config) {
      twin_config.emplace(LoadConfig(twin));
      if (twin_config->ok()) {
        event.config = twin_config->value().get();
      } else {
        event.config_error = &twin_config->status();
      }
    }
    Notify(event);
  }
  return next;
}

Result<Document> Engine::Delete(std::string_view twin, std::string_view doc, const VersionCondition& expected,
                                const WriteContext& context) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (Elsewhere()) {
    return InBatch<Result<Document>>({std::string(twin), std::string(doc), true},
                                     [&] { return Delete(twin, doc, expected, context); });
  }
  const Durability durability = Effective(context.durability);
  s = store_->Writable(false);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto current = store_->Get(twin, doc);
  if (!current.ok()) return current.status();
  const bool exists = current->has_value();
  s = CheckVersion(expected, exists, exists ? (*current)->version : 0);
  if (!s.ok()) return s;
  if (!exists) return Status::NotFound("document not found");
  std::vector<DocumentWrite> writes(1);
  writes[0] = {std::string(twin), std::string(doc), std::nullopt, nullptr};
  std::vector<std::shared_ptr<const Change>> changes;
  s = Commit(writes, ChangeKind::kDelete, context, &changes, {(*current)->version});
  if (s.ok()) s = Persist(durability);
  if (!s.ok()) return s;
  ForgetTwinIfEmpty(twin);
  if (doc == kConfigDocument) configs_.Set(twin, std::make_shared<const TwinConfig>(), 0);
  if (!observers_.empty()) {
    WriteEvent event{twin, doc, &**current, {}, nullptr, changes[0].get(), durability};
    Notify(event);
  }
  return std::move(**current);
}

Result<std::vector<std::string>> Engine::List(std::string_view twin) const {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  if (Elsewhere())
    return InBatch<Result<std::vector<std::string>>>({std::string(twin), {}, false}, [&] { return List(twin); });
  return store_->List(twin);
}

Status Engine::DeleteAll(std::string_view twin, const WriteContext& context) {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  if (Elsewhere()) return InBatch<Status>({std::string(twin), {}, true}, [&] { return DeleteAll(twin, context); });
  const Durability durability = Effective(Durability::kBeforeReturn);
  s = store_->Writable(false);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto names = store_->List(twin);
  if (!names.ok()) return names.status();
  if (names->empty()) return Status::Ok();
  // One batch of deletions, each with its change-log entry: all or none.
  std::vector<DocumentWrite> writes;
  std::vector<Document> before;
  std::vector<uint64_t> versions;
  for (const std::string& name : *names) {
    auto current = store_->Get(twin, name);
    if (!current.ok()) return current.status();
    if (!current->has_value()) continue;
    versions.push_back((*current)->version);
    before.push_back(std::move(**current));
    writes.push_back({std::string(twin), name, std::nullopt, nullptr});
  }
  std::vector<std::shared_ptr<const Change>> changes;
  s = Commit(writes, ChangeKind::kDelete, context, &changes, versions);
  if (s.ok()) configs_.Set(twin, std::make_shared<const TwinConfig>(), 0);
  if (s.ok()) s = Persist(durability);
  if (!s.ok()) return s;
  if (limits_.max_twins > 0 && !HasTwinWatches(twin)) --twins_;
  for (size_t i = 0; i < writes.size() && !observers_.empty(); ++i) {
    Notify({twin, writes[i].doc, &before[i], {}, nullptr, changes[i].get(), durability});
  }
  return s;
}

Result<Document> Engine::GetVersion(std::string_view twin, std::string_view doc, uint64_t version) const {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (Elsewhere()) {
    return InBatch<Result<Document>>({std::string(twin), std::string(doc), false},
                                     [&] { return GetVersion(twin, doc, version); });
  }
  auto current = store_->Get(twin, doc);
  if (!current.ok()) return current.status();
  if (current->has_value() && (*current)->version == version) return std::move(**current);
  // A version the document has not reached yet may be one of a deleted predecessor's.
  if (current->has_value() && version > (*current)->version) {
    return Status::NotFound("version " + std::to_string(version) + " of this document does not exist yet; it is at " +
                            std::to_string((*current)->version));
  }
  auto found = store_->FindVersion(twin, doc, version);
  if (!found.ok()) return found.status();
  if (found->has_value()) {
    Change& change = **found;
    return Document{change.version, std::move(change.data), change.time_ms};
  }
  auto oldest = store_->OldestVersion(twin, doc);
  if (!oldest.ok()) return oldest.status();
  std::string message = "version " + std::to_string(version) + " of this document is not retained";
  if (*oldest != 0) {
    message += "; the oldest version retained is " + std::to_string(*oldest);
  } else if (current->has_value()) {
    message += "; only the current version " + std::to_string((*current)->version) + " is";
  }
  return Status::NotFound(message);
}

ChangeBounds Engine::Changes() const {
  ChangeBounds bounds = store_->Changes();
  std::lock_guard<std::mutex> lock(durable_mutex_);
  bounds.newest = std::min(bounds.newest, durable_seq_);
  return bounds;
}

Result<std::vector<Change>> Engine::ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const {
  uint64_t durable;
  {
    std::lock_guard<std::mutex> lock(durable_mutex_);
    durable = durable_seq_;
  }
  if (after >= durable) return std::vector<Change>();
  auto changes = store_->ReadChanges(after, max_count, max_bytes);
  if (!changes.ok()) return changes;
  // Entries past the durable point may be in the store already (a long queue is written
  // before Sync); they are not shown before they are durable.
  auto end = std::find_if(changes->begin(), changes->end(), [&](const Change& c) { return c.seq > durable; });
  changes->erase(end, changes->end());
  return changes;
}

uint64_t Engine::WaitForChanges(uint64_t after, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> lock(durable_mutex_);
  const uint64_t generation = wake_generation_;
  durable_cv_.wait_until(lock, deadline, [&] { return durable_seq_ > after || wake_generation_ != generation; });
  return durable_seq_;
}

void Engine::WakeWaiters() const {
  {
    std::lock_guard<std::mutex> lock(durable_mutex_);
    ++wake_generation_;
  }
  durable_cv_.notify_all();
}

Result<Document> Engine::Watch(std::string_view twin, std::string_view doc, std::string_view watcher,
                               std::string_view value, Durability durability) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (watcher.empty()) return Status::InvalidArgument("watcher", "a watch needs a watcher");
  if (Elsewhere()) {
    return InBatch<Result<Document>>({std::string(twin), std::string(doc), true},
                                     [&] { return Watch(twin, doc, watcher, value, durability); });
  }
  std::lock_guard<std::mutex> lock(LockFor(twin));
  const size_t max_watches = limits_.max_documents + 1;
  bool known = false, watched = false;
  {
    std::lock_guard<std::mutex> watches_lock(watches_mutex_);
    auto found = watches_.find(twin);
    watched = found != watches_.end();
    const size_t count = watched ? found->second.size() : 0;
    known = watched && found->second.count({std::string(doc), std::string(watcher)}) != 0;
    if (!known && count >= max_watches) return Status::QuotaExceeded("twin_watches", max_watches, count);
  }
  // The first watch of a twin without documents makes it a twin (max_twins).
  bool new_twin = false;
  if (!watched && limits_.max_twins > 0) {
    auto names = store_->List(twin);
    if (!names.ok()) return names.status();
    if (names->empty()) {
      s = ReserveTwin();
      if (!s.ok()) return s;
      new_twin = true;
    }
  }
  s = store_->PutWatch({std::string(twin), std::string(doc), std::string(watcher), std::string(value), 0});
  if (!s.ok()) {
    if (new_twin) --twins_;
    return s;
  }
  uint64_t since;
  {
    // Every change of this twin up to `since` is in the store (the twin's lock is held):
    // the document read below shows them all, so only later ones are news to the watcher.
    std::lock_guard<std::mutex> commit_lock(commit_mutex_);
    since = last_seq_;
  }
  {
    std::lock_guard<std::mutex> watches_lock(watches_mutex_);
    auto& watches = watches_[std::string(twin)];
    std::pair<std::string, std::string> key{doc, watcher};
    auto found = watches.find(key);
    std::optional<WatchState> before;
    if (found != watches.end()) {
      before = found->second;
      found->second = {std::string(value), since};
    } else {
      watches.emplace(key, WatchState{std::string(value), since});
      ++watch_count_;
    }
    unsynced_watches_.push_back({std::string(twin), std::move(key), std::move(before), false});
  }
  s = Persist(durability);
  if (!s.ok()) return s;
  auto current = store_->Get(twin, doc);
  if (!current.ok()) return current.status();
  if (!current->has_value()) return Document{0, "{}", 0};
  return std::move(**current);
}

Status Engine::Unwatch(std::string_view twin, std::string_view doc, std::string_view watcher, Durability durability) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  if (Elsewhere()) {
    return InBatch<Status>({std::string(twin), std::string(doc), true},
                           [&] { return Unwatch(twin, doc, watcher, durability); });
  }
  std::lock_guard<std::mutex> lock(LockFor(twin));
  {
    std::lock_guard<std::mutex> watches_lock(watches_mutex_);
    auto found = watches_.find(twin);
    if (found == watches_.end() || found->second.count({std::string(doc), std::string(watcher)}) == 0) {
      return Status::Ok();  // nothing to remove: unwatching twice is no error
    }
  }
  s = store_->DeleteWatch(twin, doc, watcher);
  if (!s.ok()) return s;
  std::pair<std::string, std::string> key{doc, watcher};
  std::optional<WatchState> before;
  bool last = false;
  {
    std::lock_guard<std::mutex> watches_lock(watches_mutex_);
    auto found = watches_.find(twin);
    if (found != watches_.end()) {
      auto watch = found->second.find(key);
      if (watch != found->second.end()) {
        before = std::move(watch->second);
        found->second.erase(watch);
        --watch_count_;
        last = found->second.empty();
        if (last) watches_.erase(found);
      }
    }
  }
  // Its last watch went: a twin without documents is no more.
  const bool uncounted = last && ForgetTwinIfEmpty(twin);
  if (before) {
    std::lock_guard<std::mutex> watches_lock(watches_mutex_);
    unsynced_watches_.push_back({std::string(twin), std::move(key), std::move(before), uncounted});
  }
  return Persist(durability);
}

// A twin that a failed watch made is left counted, as one a failed write created: the
// stricter error. One that a failed unwatch left empty is counted again.
void Engine::UndoWatches(std::vector<WatchUndo> undo) {
  std::lock_guard<std::mutex> lock(watches_mutex_);
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    auto& watches = watches_[it->twin];
    auto found = watches.find(it->key);
    if (it->before && found != watches.end()) {
      found->second = std::move(*it->before);
    } else if (it->before) {
      watches.emplace(std::move(it->key), std::move(*it->before));
      ++watch_count_;
    } else if (found != watches.end()) {
      watches.erase(found);
      --watch_count_;
    }
    if (watches.empty()) watches_.erase(it->twin);
    if (it->uncounted) ++twins_;
  }
}

bool Engine::IsWatched(std::string_view twin, std::string_view doc) const {
  std::lock_guard<std::mutex> lock(watches_mutex_);
  auto found = watches_.find(twin);
  if (found == watches_.end()) return false;
  auto first = found->second.lower_bound({std::string(doc), std::string()});
  return first != found->second.end() && first->first.first == doc;
}

std::vector<WatchRecord> Engine::Watches(std::string_view twin, std::string_view doc) const {
  std::vector<WatchRecord> out;
  std::lock_guard<std::mutex> lock(watches_mutex_);
  auto found = watches_.find(twin);
  if (found == watches_.end()) return out;
  for (auto it = found->second.lower_bound({std::string(doc), std::string()});
       it != found->second.end() && it->first.first == doc; ++it) {
    out.push_back({std::string(twin), it->first.first, it->first.second, it->second.value, it->second.since});
  }
  return out;
}

Result<TwinConfig> Engine::Config(std::string_view twin) const {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  if (Elsewhere()) {
    return InBatch<Result<TwinConfig>>({std::string(twin), std::string(kConfigDocument), false},
                                       [&] { return Config(twin); });
  }
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto config = LoadConfig(twin);
  if (!config.ok()) return config.status();
  return **config;
}

Result<std::shared_ptr<const TwinConfig>> Engine::LoadConfig(std::string_view twin) const {
  if (auto cached = configs_.Find(twin)) return cached;
  auto found = store_->Get(twin, kConfigDocument);
  if (!found.ok()) return found.status();
  auto config = std::make_shared<TwinConfig>();
  size_t bytes = 0;
  if (found->has_value()) {
    bytes = (*found)->data.size();
    Json data(cJSON_Parse((*found)->data.c_str()));
    if (!data) return Status::Internal("stored _config is not valid JSON");
    auto parsed = ParseTwinConfig(data.get());
    if (!parsed.ok()) return parsed.status();
    *config = std::move(parsed).value();
  }
  configs_.Set(twin, config, bytes);
  return std::shared_ptr<const TwinConfig>(std::move(config));
}

void Engine::CatchUp(const std::vector<Change>& elsewhere, std::optional<uint64_t> locked_seq, bool gap) {
  if (gap) configs_.Clear();
  uint64_t newest = 0;
  for (const Change& change : elsewhere) {
    if (change.doc == kConfigDocument) configs_.Set(change.twin, nullptr, 0);  // read again when next used
    for (WriteObserver* observer : observers_) observer->OnChangeElsewhere(change);
    newest = std::max(newest, change.seq);
  }
  {
    // Under the store's write lock its newest seq is exact: a batch that failed may have
    // taken seqs past it, which were never committed and are free again.
    std::lock_guard<std::mutex> lock(commit_mutex_);
    last_seq_ = locked_seq ? *locked_seq : std::max(last_seq_, newest);
    newest = std::max(newest, last_seq_);
  }
  {
    std::lock_guard<std::mutex> lock(durable_mutex_);
    if (newest <= durable_seq_) return;
    durable_seq_ = newest;
  }
  durable_cv_.notify_all();
}

void Engine::ReplaceWatches(std::string_view twin, const std::vector<WatchRecord>& watches) {
  std::lock_guard<std::mutex> lock(watches_mutex_);
  auto found = watches_.find(twin);
  decltype(watches_)::mapped_type fresh;
  for (const WatchRecord& watch : watches) {
    WatchState state{watch.value, 0};
    if (found != watches_.end()) {
      auto known = found->second.find({watch.doc, watch.watcher});
      if (known != found->second.end()) state.since = known->second.since;
    }
    fresh[{watch.doc, watch.watcher}] = std::move(state);
  }
  const size_t before = found != watches_.end() ? found->second.size() : 0;
  watch_count_ += fresh.size();
  watch_count_ -= before;
  if (fresh.empty()) {
    if (found != watches_.end()) watches_.erase(found);
  } else if (found != watches_.end()) {
    found->second = std::move(fresh);
  } else {
    watches_.emplace(std::string(twin), std::move(fresh));
  }
}

}  // namespace twins
