#include "rest/twin_endpoints.hpp"

#include <optional>
#include <string>

#include "rest/conditional.hpp"
#include "rest/errors.hpp"
#include "engine/json.hpp"

namespace twins {
namespace {

// Enough for any realistic race between writers of one document; a client that still
// loses gets a 412 and retries like after any version mismatch.
constexpr int kWriteAttempts = 8;

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
  auto found = engine_.Get(twin, doc);
  if (!found.ok()) return ErrorResponse(found.status(), doc, log_);
  std::string_view none_match = request.header("If-None-Match");
  if (!none_match.empty() && IfNoneMatchHits(none_match, found->version)) {
    HttpResponse response;
    response.status = 304;
    response.etag = ETag(found->version);
    return response;
  }
  return DocumentResponse(twin, doc, found.value());
}

HttpResponse TwinEndpoints::Put(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  return Write(request, twin, doc, WriteMethod::kPut);
}

HttpResponse TwinEndpoints::Patch(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  return Write(request, twin, doc, WriteMethod::kPatch);
}

HttpResponse TwinEndpoints::Write(HttpRequest& request, std::string_view twin, std::string_view doc,
                                  WriteMethod method) const {
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
  return WriteIfMatch(
      request, twin, doc, write.version,
      [&](uint64_t expected) {
        write.version = expected;
        return method == WriteMethod::kPatch ? engine_.Patch(twin, doc, write) : engine_.Put(twin, doc, write);
      },
      true);
}

HttpResponse TwinEndpoints::Delete(HttpRequest& request, std::string_view twin, std::string_view doc) const {
  if (auto throttled = Throttle(twin, doc)) return *throttled;
  const Limits& limits = engine_.limits();
  std::string body;
  if (auto error = ReadJsonBody(request, limits.max_request_bytes(), &body)) return *error;
  auto parsed = ParseWriteRequest(body, limits, BodyOf::kDelete);
  if (!parsed.ok()) return ErrorResponse(parsed.status(), doc, log_);
  return WriteIfMatch(
      request, twin, doc, parsed->version, [&](uint64_t expected) { return engine_.Delete(twin, doc, expected); },
      false);
}

// A single If-Match version is the engine's own atomic version check. "*" and lists need
// the current version first; the write then carries it, so a concurrent change makes the
// write fail rather than slip through, and the check is run again.
HttpResponse TwinEndpoints::WriteIfMatch(HttpRequest& request, std::string_view twin, std::string_view doc,
                                         uint64_t body_version, const WriteFn& write, bool reply_document) const {
  std::string_view header = request.header("If-Match");
  if (header.empty()) return Reply(write(body_version), twin, doc, reply_document);
  auto match = ParseIfMatch(header);
  if (!match.ok()) return InvalidArgument("If-Match", "format", match.status().message());
  if (!match->any && match->versions.size() == 1 && (body_version == 0 || body_version == match->versions[0])) {
    return Reply(write(match->versions[0]), twin, doc, reply_document);
  }
  for (int attempt = 1;; ++attempt) {
    auto current = engine_.Get(twin, doc);
    if (!current.ok() && current.status().code() != Code::kNotFound) {
      return ErrorResponse(current.status(), doc, log_);
    }
    const uint64_t actual = current.ok() ? current->version : 0;
    if (actual == 0 || !match->Matches(actual)) return PreconditionFailed(match->Describe(), actual);
    if (body_version != 0 && body_version != actual) return PreconditionFailed(std::to_string(body_version), actual);
    Result<Document> written = write(actual);
    if (written.ok() || written.status().code() != Code::kVersionMismatch || attempt == kWriteAttempts) {
      return Reply(written, twin, doc, reply_document);
    }
  }
}

HttpResponse TwinEndpoints::Reply(const Result<Document>& result, std::string_view twin, std::string_view doc,
                                  bool reply_document) const {
  if (!result.ok()) return ErrorResponse(result.status(), doc, log_);
  return reply_document ? DocumentResponse(twin, doc, result.value()) : NoContent();
}

}  // namespace twins
