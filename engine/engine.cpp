#include "engine/engine.hpp"

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

Status CheckVersion(uint64_t expected, uint64_t actual) {
  if (expected != 0 && expected != actual) return Status::VersionMismatch(expected, actual);
  return Status::Ok();
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
  if (parsed->version_kind == Version::kNumber) request.version = parsed->version;
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
  if (limits_.max_twins == 0) return;
  auto twins = store_->CountTwins();
  if (twins.ok()) {
    twins_ = *twins;
  } else {
    start_status_ = Status::Internal("cannot count the twins: " + twins.status().message());
  }
}

Status Engine::ReserveTwin() {
  if (!start_status_.ok()) return start_status_;
  uint64_t twins = twins_.load();
  do {
    if (twins >= limits_.max_twins) return Status::QuotaExceeded("twins", limits_.max_twins, twins);
  } while (!twins_.compare_exchange_weak(twins, twins + 1));
  return Status::Ok();
}

void Engine::ForgetTwinIfEmpty(std::string_view twin) {
  if (limits_.max_twins == 0) return;
  auto names = store_->List(twin);
  if (names.ok() && names->empty()) --twins_;
}

std::mutex& Engine::LockFor(std::string_view twin) const {
  return stripes_[std::hash<std::string_view>()(twin) % stripes_.size()];
}

Result<Document> Engine::Get(std::string_view twin, std::string_view doc) const {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  auto found = store_->Get(twin, doc);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return Status::NotFound("document not found");
  return std::move(**found);
}

Result<Document> Engine::Put(std::string_view twin, std::string_view doc, const WriteRequest& request,
                             Durability durability) {
  return Write(twin, doc, request, Mode::kPut, durability);
}

Result<Document> Engine::Patch(std::string_view twin, std::string_view doc, const WriteRequest& request,
                               Durability durability) {
  return Write(twin, doc, request, Mode::kPatch, durability);
}

Result<Document> Engine::Write(std::string_view twin, std::string_view doc, const WriteRequest& request, Mode mode,
                               Durability durability) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
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
  s = CheckVersion(request.version, version);
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
    new_twin = limits_.max_twins > 0 && names->empty();
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
  s = store_->Put(twin, doc, next);
  if (!s.ok()) {
    if (new_twin) --twins_;  // refused: the twin was not created
    return s;
  }
  // A failed sync leaves the write uncertain: the twin stays counted (the stricter error).
  s = Persist(durability);
  if (!s.ok()) return s;
  if (is_config) configs_.Set(twin, std::move(config), next.data.size());
  if (observer_ != nullptr) {
    WriteEvent event{twin, doc, exists ? &**current : nullptr, request.data, &next};
    std::optional<Result<std::shared_ptr<const TwinConfig>>> twin_config;
    if (!is_config) {
      twin_config.emplace(LoadConfig(twin));
      if (twin_config->ok()) {
        event.config = twin_config->value().get();
      } else {
        event.config_error = &twin_config->status();
      }
    }
    observer_->OnWrite(event);
  }
  return next;
}

Result<Document> Engine::Delete(std::string_view twin, std::string_view doc, uint64_t expected_version,
                                Durability durability) {
  Status s = ValidateNames(twin, doc);
  if (!s.ok()) return s;
  s = store_->Writable(false);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(LockFor(twin));
  auto current = store_->Get(twin, doc);
  if (!current.ok()) return current.status();
  if (!current->has_value()) {
    if (expected_version != 0) return Status::VersionMismatch(expected_version, 0);
    return Status::NotFound("document not found");
  }
  s = CheckVersion(expected_version, (*current)->version);
  if (!s.ok()) return s;
  s = store_->Delete(twin, doc);
  if (s.ok()) s = Persist(durability);
  if (!s.ok()) return s;
  ForgetTwinIfEmpty(twin);
  if (doc == kConfigDocument) configs_.Set(twin, std::make_shared<const TwinConfig>(), 0);
  return std::move(**current);
}

Result<std::vector<std::string>> Engine::List(std::string_view twin) const {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  return store_->List(twin);
}

Status Engine::DeleteAll(std::string_view twin) {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
  s = store_->Writable(false);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(LockFor(twin));
  bool had_documents = false;
  if (limits_.max_twins > 0) {
    auto names = store_->List(twin);
    if (!names.ok()) return names.status();
    had_documents = !names->empty();
  }
  s = store_->DeleteAll(twin);
  if (s.ok()) configs_.Set(twin, std::make_shared<const TwinConfig>(), 0);
  if (s.ok()) s = Persist(Durability::kBeforeReturn);
  if (s.ok() && had_documents) --twins_;
  return s;
}

Result<TwinConfig> Engine::Config(std::string_view twin) const {
  Status s = ValidateTwinId(twin);
  if (!s.ok()) return s;
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

}  // namespace twins
