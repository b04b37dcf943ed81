#include "admin/format.hpp"

#include <cjson/cJSON.h>

#include <cmath>
#include <initializer_list>
#include <set>

#include "engine/json.hpp"
#include "engine/names.hpp"
#include "engine/request_body.hpp"

namespace twins::admin {
namespace {

Status Invalid(const std::string& field, const std::string& message) { return Status::InvalidArgument(field, message); }

// The members of `object` are exactly `names` (in any order, each once).
Status CheckMembers(const cJSON* object, std::initializer_list<std::string_view> names) {
  std::set<std::string_view> seen;
  for (const cJSON* child = object->child; child != nullptr; child = child->next) {
    const std::string_view name = child->string;
    bool known = false;
    for (std::string_view allowed : names) known = known || name == allowed;
    if (!known) return Invalid(std::string(name), "unknown member \"" + std::string(name) + "\"");
    if (!seen.insert(name).second) return Invalid(std::string(name), "member \"" + std::string(name) + "\" twice");
  }
  for (std::string_view name : names) {
    if (seen.count(name) == 0) return Invalid(std::string(name), "missing member \"" + std::string(name) + "\"");
  }
  return Status::Ok();
}

const cJSON* Member(const cJSON* object, const char* name) { return cJSON_GetObjectItemCaseSensitive(object, name); }

Result<std::string> String(const cJSON* object, const char* name) {
  const cJSON* item = Member(object, name);
  if (!cJSON_IsString(item)) return Invalid(name, "\"" + std::string(name) + "\" must be a string");
  return std::string(item->valuestring);
}

// An integer from `min` to 2^53 (beyond, a JSON number no longer holds every integer).
Result<int64_t> Integer(const cJSON* object, const char* name, int64_t min) {
  const cJSON* item = Member(object, name);
  constexpr double kMax = static_cast<double>(kMaxVersion);
  if (!cJSON_IsNumber(item) || std::floor(item->valuedouble) != item->valuedouble || item->valuedouble < -kMax ||
      item->valuedouble > kMax || item->valuedouble < static_cast<double>(min)) {
    return Invalid(name, "\"" + std::string(name) + "\" must be an integer from " + std::to_string(min) + " to 2^53");
  }
  return static_cast<int64_t>(item->valuedouble);
}

// The line's twin_id and document_name, by the twin rules.
Status ReadNames(const cJSON* json, std::string* twin, std::string* doc) {
  auto twin_id = String(json, "twin_id");
  if (!twin_id.ok()) return twin_id.status();
  auto name = String(json, "document_name");
  if (!name.ok()) return name.status();
  Status s = ValidateTwinId(*twin_id);
  if (!s.ok()) return Invalid("twin_id", s.message() + ": \"" + *twin_id + "\"");
  s = ValidateDocumentName(*name);
  if (!s.ok()) return Invalid("document_name", s.message() + ": \"" + *name + "\"");
  *twin = std::move(twin_id).value();
  *doc = std::move(name).value();
  return Status::Ok();
}

Status CheckUtf8(std::initializer_list<const std::string*> parts) {
  for (const std::string* part : parts) {
    if (!IsValidUtf8(*part)) return Status::Internal("not valid UTF-8: \"" + *part + "\"");
  }
  return Status::Ok();
}

Result<Line> ParseDocument(std::string_view text, const cJSON* json) {
  Status s = CheckMembers(json, {"type", "twin_id", "document_name", "version", "modified_ms", "data"});
  if (!s.ok()) return s;
  Line line;
  line.type = Line::Type::kDocument;
  std::string twin, doc;
  s = ReadNames(json, &twin, &doc);
  if (!s.ok()) return s;
  auto modified = Integer(json, "modified_ms", -static_cast<int64_t>(kMaxVersion));
  if (!modified.ok()) return modified.status();
  // The engine's own reading of {"version", "data"}: the version exactly, the data checked by
  // the twin rules and in the form the engine stores.
  auto body = ParseRequestBody(text, true, "line");
  if (!body.ok()) return body.status();
  if (body->version_kind != RequestBody::Version::kNumber || body->version == 0) {
    return Invalid("version", "\"version\" must be an integer from 1 to 2^53");
  }
  if (!body->data || !body->data_is_object) return Invalid("data", "\"data\" must be a JSON object");
  if (!body->data_error.ok()) return body->data_error;
  if (!body->reserved_key_path.empty() && doc != kConfigDocument) {
    return Invalid("data", "key " + body->reserved_key_path + " starts with '_', reserved outside _config");
  }
  line.document = {std::move(twin), std::move(doc), StoredDocument{body->version, std::move(*body->data), *modified}};
  return line;
}

Result<Line> ParseWatch(const cJSON* json) {
  Status s = CheckMembers(json, {"type", "twin_id", "document_name", "watcher", "value"});
  if (!s.ok()) return s;
  Line line;
  line.type = Line::Type::kWatch;
  s = ReadNames(json, &line.watch.twin, &line.watch.doc);
  if (!s.ok()) return s;
  auto watcher = String(json, "watcher");
  if (!watcher.ok()) return watcher.status();
  if (watcher->empty()) return Invalid("watcher", "\"watcher\" must not be empty");
  auto value = String(json, "value");
  if (!value.ok()) return value.status();
  line.watch.watcher = std::move(watcher).value();
  line.watch.value = std::move(value).value();
  return line;
}

}  // namespace

std::string HeaderLine(int schema, uint64_t seq) {
  return "{\"type\":\"header\",\"format\":" + std::to_string(kFormatVersion) + ",\"schema\":" + std::to_string(schema) +
         ",\"seq\":" + std::to_string(seq) + "}";
}

Result<std::string> DocumentLine(const SnapshotDocument& document) {
  Status s = CheckUtf8({&document.twin, &document.doc});
  if (!s.ok()) return s;
  s = CheckData(document.document.data);
  if (!s.ok()) return s;
  std::string line = "{\"type\":\"document\",\"twin_id\":";
  AppendQuoted(document.twin, &line);
  line += ",\"document_name\":";
  AppendQuoted(document.doc, &line);
  line += ",\"version\":" + std::to_string(document.document.version);
  line += ",\"modified_ms\":" + std::to_string(document.document.modified_ms);
  line += ",\"data\":";
  line += document.document.data;
  line += '}';
  return line;
}

Result<std::string> WatchLine(const WatchRecord& watch) {
  Status s = CheckUtf8({&watch.twin, &watch.doc, &watch.watcher, &watch.value});
  if (!s.ok()) return s;
  std::string line = "{\"type\":\"watch\",\"twin_id\":";
  AppendQuoted(watch.twin, &line);
  line += ",\"document_name\":";
  AppendQuoted(watch.doc, &line);
  line += ",\"watcher\":";
  AppendQuoted(watch.watcher, &line);
  line += ",\"value\":";
  AppendQuoted(watch.value, &line);
  line += '}';
  return line;
}

std::string EndLine(uint64_t documents, uint64_t watches) {
  return "{\"type\":\"end\",\"documents\":" + std::to_string(documents) + ",\"watches\":" + std::to_string(watches) +
         "}";
}

Status CheckData(std::string_view data) {
  std::string wrapped = "{\"data\":";
  wrapped.append(data);
  wrapped += '}';
  auto body = ParseRequestBody(wrapped, true, "data");
  if (!body.ok()) return Status::Internal("data is not JSON: " + body.status().message());
  if (!body->data || !body->data_is_object) return Status::Internal("data is not a JSON object");
  return Status::Ok();
}

Result<Line> ParseLine(std::string_view text) {
  // cJSON reads up to a NUL and allows bytes after the value: the whole line must be one object.
  auto checked = ParseRequestBody(text, false, "line");
  if (!checked.ok()) return Invalid("line", "not one JSON object: " + checked.status().message());
  const Json json(cJSON_ParseWithLength(text.data(), text.size()));
  if (json == nullptr || !cJSON_IsObject(json.get())) return Invalid("line", "not one JSON object");
  auto type = String(json.get(), "type");
  if (!type.ok()) return type.status();
  if (*type == "document") return ParseDocument(text, json.get());
  if (*type == "watch") return ParseWatch(json.get());
  Line line;
  if (*type == "header") {
    Status s = CheckMembers(json.get(), {"type", "format", "schema", "seq"});
    if (!s.ok()) return s;
    auto format = Integer(json.get(), "format", 1);
    if (!format.ok()) return format.status();
    if (*format != kFormatVersion) {
      return Invalid("format", "format " + std::to_string(*format) + " is not known to this build (it reads " +
                                   std::to_string(kFormatVersion) + ")");
    }
    auto schema = Integer(json.get(), "schema", 1);
    if (!schema.ok()) return schema.status();
    auto seq = Integer(json.get(), "seq", 0);
    if (!seq.ok()) return seq.status();
    line.type = Line::Type::kHeader;
    line.schema = static_cast<int>(std::min<int64_t>(*schema, 1 << 30));
    line.seq = static_cast<uint64_t>(*seq);
    return line;
  }
  if (*type == "end") {
    Status s = CheckMembers(json.get(), {"type", "documents", "watches"});
    if (!s.ok()) return s;
    auto documents = Integer(json.get(), "documents", 0);
    if (!documents.ok()) return documents.status();
    auto watches = Integer(json.get(), "watches", 0);
    if (!watches.ok()) return watches.status();
    line.type = Line::Type::kEnd;
    line.documents = static_cast<uint64_t>(*documents);
    line.watches = static_cast<uint64_t>(*watches);
    return line;
  }
  return Invalid("type", "unknown \"type\" \"" + *type + "\" (header, document, watch or end)");
}

}  // namespace twins::admin
