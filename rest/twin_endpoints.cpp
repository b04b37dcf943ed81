#include "rest/twin_endpoints.hpp"

#include <optional>
#include <string>

#include "rest/conditional.hpp"
#include "rest/errors.hpp"
#include "engine/json.hpp"
#include "rest/http_time.hpp"
#include "rest/path.hpp"

namespace twins {
namespace {

// When the document last changed; unknown (no header) for one written before that was kept.
void AddLastModified(const Document& document, HttpResponse& response) {
  if (document.modified_ms <= 0) return;
  response.headers.emplace_back("Last-Modified", HttpDate(document.modified_ms / 1000));
}

HttpResponse DocumentResponse(std::string_view twin, std::string_view doc, const Document& document) {
  std::string body;
  body.reserve(document.data.size() + twin.size() + doc.size() + 64);
  body += "{\"twin_id\":";
  body += QuoteJson(twin);
  body += ",\"document_name\":";
  body += QuoteJson(doc);
  body += ",\"version\":";
  body += std::to_string(document.version);
  body += ",\"data\":";
  body += document.data;
  body += '}';
  HttpResponse response = JsonResponse(200, std::move(body));
  response.etag = ETag(document.version);
  AddLastModified(document, response);
  return response;
}

HttpResponse NoContent() {
  HttpResponse response;
  response.status = 204;
  return response;
}

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  if (media.size() != kJson.size()) return false;
  for (size_t i = 0; i < media.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kJson[i]) return false;
  }
  return true;
}

// The body of a request that carries JSON, or the error reply. A missing Content-Type is
// accepted (hand-written clients often omit it); any other type is refused.
std::optional<HttpResponse> ReadJsonBody(HttpRequest& request, size_t limit, std::string* body) {
  BodyRead read = request.ReadBody(limit);
  switch (read.outcome) {
    case BodyRead::Outcome::kOk: {
      std::string_view type = request.header("Content-Type");
      if (!read.text.empty() && !type.empty() && !IsJsonMediaType(type)) {
        return InvalidArgument("Content-Type", "constraint", "request bodies must be application/json", 415);
      }
      *body = std::move(read.text);
      return std::nullopt;
    }
    case BodyRead::Outcome::kTooLarge:
      return PayloadTooLarge(read.length, limit);
    case BodyRead::Outcome::kFailed:
      break;
  }
  return InvalidArgument("body", "format", "the request body could not be read");
}

// An If-Match header, translated into the engine's version condition (the engine checks it
// atomically with the write). No header, no condition.
std::optional<HttpResponse> AddIfMatch(HttpRequest& request, VersionCondition* expected) {
  std::string_view header = request.header("If-Match");
  if (header.empty()) return std::nullopt;
  auto match = ParseIfMatch(header);
  if (!match.ok()) return InvalidArgument("If-Match", "format", match.status().message());
  expected->must_exist = true;
  if (!match->any) expected->one_of = match->versions;
  expected->describe = match->Describe();
  return std::nullopt;
}

}  // namespace

HttpResponse TwinEndpoints::List(std::string_view twin) const {
  auto names = engine_.List(twin);
  if (!names.ok()) return ErrorResponse(names.status(), {}, log_);
  std::string body = "{\"documents\":[";
  for (size_t i = 0; i < names->size(); ++i) {
    if (i > 0) body += ',';
    body += "{\"document_name\":" + QuoteJson((*names)[i]) + "}";
  }
  body += "]}";
  return JsonResponse(200, std::move(body));
}

std::optional<HttpResponse> TwinEndpoints::Throttle(std::string_view twin, std::string_view doc) const {
  const uint64_t wait_ms = write_limiter_.Acquire(twin);
  if (wait_ms == 0) return std::nullopt;
  return ErrorResponse(Status::TooManyRequests(wait_ms), doc, log_);
}

HttpResponse TwinEndpoints::DeleteAll(std::string_view twin) const {
  if (auto throttled = Throttle(twin, {})) return *throttled;
  Status status = engine_.DeleteAll(twin);
  if (!status.ok()) return ErrorResponse(status, {}, log_);
  return NoContent();
}

HttpResponse TwinEndpoints::Get(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  const QueryParameter version = FindQueryParameter(request.query(), "version");
  std::optional<uint64_t> wanted;
  if (version.present) {
    if (version.valid) wanted = ParseVersionText(version.value);
    if (!wanted) return InvalidArgument("version", "format", "version must be a document version, 1 to 2^53");
  }
  auto found = wanted ? engine_.GetVersion(twin, doc, *wanted) : engine_.Get(twin, doc);
  if (!found.ok()) return ErrorResponse(found.status(), doc, log_);
  std::string_view none_match = request.header("If-None-Match");
  if (!none_match.empty() && IfNoneMatchHits(none_match, found->version)) {
    HttpResponse response;
    response.status = 304;
    response.etag = ETag(found->version);
    AddLastModified(found.value(), response);  // as the 200 would have: caches keep it
    return response;
  }
  return DocumentResponse(twin, doc, found.value());
}

HttpResponse TwinEndpoints::Put(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  return Write(request, twin, doc, WriteMode::kPut);
}

HttpResponse TwinEndpoints::Patch(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  return Write(request, twin, doc, WriteMode::kPatch);
}

HttpResponse TwinEndpoints::Write(HttpRequest& request, std::string_view twin, std::string_view doc,
                                  WriteMode mode) const {
  if (auto throttled = Throttle(twin, doc)) return *throttled;
  const Limits& limits = engine_.limits();
  std::string body;
  if (auto error = ReadJsonBody(request, limits.max_request_bytes(), &body)) return *error;
  if (body.empty()) {
    return InvalidArgument("data", "required", "a JSON body {\"version\"?: N, \"data\": {...}} is required");
  }
  auto parsed = ParseWriteRequest(body, limits);
  if (!parsed.ok()) return ErrorResponse(parsed.status(), doc, log_);
  WriteRequest& write = parsed.value();
  if (auto error = AddIfMatch(request, &write.expected)) return *error;
  auto written = mode == WriteMode::kPatch ? engine_.Patch(twin, doc, write) : engine_.Put(twin, doc, write);
  if (!written.ok()) return ErrorResponse(written.status(), doc, log_);
  return DocumentResponse(twin, doc, written.value());
}

HttpResponse TwinEndpoints::Delete(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  if (auto throttled = Throttle(twin, doc)) return *throttled;
  const Limits& limits = engine_.limits();
  std::string body;
  if (auto error = ReadJsonBody(request, limits.max_request_bytes(), &body)) return *error;
  auto parsed = ParseWriteRequest(body, limits, BodyOf::kDelete);
  if (!parsed.ok()) return ErrorResponse(parsed.status(), doc, log_);
  if (auto error = AddIfMatch(request, &parsed->expected)) return *error;
  auto deleted = engine_.Delete(twin, doc, parsed->expected);
  if (!deleted.ok()) return ErrorResponse(deleted.status(), doc, log_);
  return NoContent();
}

}  // namespace twins
