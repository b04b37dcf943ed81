#include "rest/errors.hpp"

#include <string>

#include "engine/json.hpp"

namespace twins {

HttpResponse JsonResponse(int status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.content_type = "application/json";
  response.body = std::move(body);
  return response;
}

HttpResponse ErrorResponse(const Status& status, std::string_view document, const LogFn& log) {
  switch (status.code()) {
    case Code::kInvalidArgument:
      return InvalidArgument(status.field(), "constraint", status.message());
    case Code::kNotFound:
      return NotFound("twin_document", document, status.message());
    case Code::kVersionMismatch:
      return PreconditionFailed(status.expected_text(), status.actual());
    case Code::kQuotaExceeded: {
      HttpResponse response = JsonResponse(
          403, "{\"type\":\"quotas_exceeded\",\"details\":[{\"resource\":" + QuoteJson(status.field()) +
                   ",\"quota\":" + std::to_string(status.quota()) + ",\"current\":" + std::to_string(status.current()) +
                   "}],\"message\":" + QuoteJson(status.message()) + "}");
      response.quota = status.field();
      return response;
    }
    case Code::kTooManyRequests: {
      const uint64_t ms = status.retry_after_ms();
      HttpResponse response = JsonResponse(
          429, "{\"type\":\"too_many_requests\",\"help_message\":" +
                   QuoteJson("too many writes to this twin; retry in " + std::to_string(ms) + " ms") +
                   ",\"retry_after_ms\":" + std::to_string(ms) + ",\"message\":\"too many requests\"}");
      response.retry_after = std::to_string((ms + 999) / 1000);  // whole seconds, never 0
      return response;
    }
    case Code::kInsufficientStorage:
      // Scaleway's type for capacity the platform lacks (the SDKs raise OutOfStockError); 507
      // says the request may succeed later.
      return JsonResponse(507, "{\"type\":\"out_of_stock\",\"resource\":" + QuoteJson(status.field()) +
                                   ",\"min_free_mb\":" + std::to_string(status.min_free_mb()) +
                                   ",\"free_mb\":" + std::to_string(status.free_mb()) +
                                   ",\"message\":" + QuoteJson(status.message()) + "}");
    case Code::kUnavailable: {
      HttpResponse response = JsonResponse(
          503, "{\"type\":\"service_unavailable\",\"message\":" + QuoteJson(status.message()) + "}");
      response.retry_after = "1";
      return response;
    }
    case Code::kOk:
    case Code::kInternal:
      break;
  }
  return InternalError(log, "REST: internal error: " + status.message());
}

HttpResponse InvalidArgument(std::string_view argument, std::string_view reason, std::string_view help,
                             int http_status) {
  return JsonResponse(http_status,
                      "{\"type\":\"invalid_arguments\",\"message\":\"invalid argument(s)\",\"details\":[{"
                      "\"argument_name\":" +
                          QuoteJson(argument) + ",\"reason\":" + QuoteJson(reason) +
                          ",\"help_message\":" + QuoteJson(help) + "}]}");
}

HttpResponse DeniedAuthentication(std::string_view message) {
  return JsonResponse(401,
                      "{\"type\":\"denied_authentication\",\"method\":\"secret_key\",\"reason\":\"invalid_argument\","
                      "\"message\":" +
                          QuoteJson(message) + "}");
}

HttpResponse TooManyFailedAuthentications(uint64_t retry_after_ms) {
  HttpResponse response = JsonResponse(
      429, "{\"type\":\"too_many_requests\",\"help_message\":" +
               QuoteJson("too many failed authentications from this address; retry in " +
                         std::to_string(retry_after_ms) + " ms") +
               ",\"retry_after_ms\":" + std::to_string(retry_after_ms) + ",\"message\":\"too many requests\"}");
  response.retry_after = std::to_string((retry_after_ms + 999) / 1000);
  response.address_refused = true;
  return response;
}

HttpResponse NotFound(std::string_view resource, std::string_view resource_id, std::string_view message) {
  return JsonResponse(404, "{\"type\":\"not_found\",\"resource\":" + QuoteJson(resource) + ",\"resource_id\":" +
                               QuoteJson(resource_id) + ",\"message\":" + QuoteJson(message) + "}");
}

HttpResponse PreconditionFailed(std::string_view expected, uint64_t actual) {
  const std::string help = "expected version " + std::string(expected) + ", document is at " + std::to_string(actual);
  return JsonResponse(412, "{\"type\":\"precondition_failed\",\"precondition\":\"document_version\",\"help_message\":" +
                               QuoteJson(help) + ",\"message\":\"document version mismatch\"}");
}

HttpResponse MethodNotAllowed(std::string_view method, std::string_view allow) {
  HttpResponse response = JsonResponse(
      405, "{\"type\":\"method_not_allowed\",\"message\":" +
               QuoteJson("method " + std::string(method) + " is not allowed here; allowed: " + std::string(allow)) +
               "}");
  response.allow = std::string(allow);
  return response;
}

HttpResponse PayloadTooLarge(long long length, size_t limit) {
  const std::string size = length >= 0 ? "of " + std::to_string(length) + " bytes " : "";
  return InvalidArgument("body", "constraint",
                         "request body " + size + "is larger than the limit of " + std::to_string(limit) + " bytes",
                         413);
}

HttpResponse InternalError(const LogFn& log, std::string_view detail, int http_status) {
  return JsonResponse(http_status,
                      "{\"type\":\"internal_error\",\"message\":" + QuoteJson(ReportInternalError(log, detail)) + "}");
}

HttpResponse Unavailable(std::string_view message) {
  return JsonResponse(503, "{\"type\":\"service_unavailable\",\"message\":" + QuoteJson(message) + "}");
}

HttpResponse WritesRefused(std::string_view reason, std::string_view graphite) {
  return JsonResponse(
      503, "{\"type\":\"service_unavailable\",\"status\":\"writes_refused\",\"reason\":" + QuoteJson(reason) +
               ",\"graphite\":\"" + std::string(graphite) + "\",\"message\":\"the twin store refuses writes\"}");
}

}  // namespace twins
