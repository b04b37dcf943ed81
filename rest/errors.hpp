// HTTP status and Scaleway error JSON (the `type` field the SDKs dispatch on). The engine's
// Status codes are mapped here and nowhere else.
#pragma once

#include <cstdint>
#include <string_view>

#include "rest/http.hpp"
#include "common/log.hpp"
#include "common/status.hpp"

namespace twins {

// A JSON reply with `Content-Type: application/json` exactly.
HttpResponse JsonResponse(int status, std::string body);

// The engine's verdict as an HTTP error. `document` is the resource_id of a not-found; an
// internal error is logged in full and answered with its log id only.
HttpResponse ErrorResponse(const Status& status, std::string_view document, const LogFn& log);

// reason is one of unknown, required, format, constraint.
HttpResponse InvalidArgument(std::string_view argument, std::string_view reason, std::string_view help,
                             int http_status = 400);
HttpResponse DeniedAuthentication(std::string_view message);
// 429 for an address refused after repeated failed authentications, with Retry-After.
HttpResponse TooManyFailedAuthentications(uint64_t retry_after_ms);
HttpResponse NotFound(std::string_view resource, std::string_view resource_id, std::string_view message);
// `expected` is what the request asked for: a version, "*" or a list.
HttpResponse PreconditionFailed(std::string_view expected, uint64_t actual);
HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow);
HttpResponse PayloadTooLarge(long long length, size_t limit);
// The detail is logged, the client gets its log id only (ReportInternalError).
HttpResponse InternalError(const LogFn& log, std::string_view detail, int http_status = 500);
HttpResponse Unavailable(std::string_view message);
// /healthz while the store refuses writes (`reason`); `graphite` is off, reachable or unreachable.
HttpResponse WritesRefused(std::string_view reason, std::string_view graphite);

}  // namespace twins
