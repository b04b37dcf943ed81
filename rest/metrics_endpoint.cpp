#include "rest/metrics_endpoint.hpp"

#include <vector>

#include "rest/errors.hpp"
#include "rest/event_stream.hpp"
#include "rest/path.hpp"

namespace twins {

HttpResponse MetricsResponse(const metrics::TwinsMetrics& metrics) {
  HttpResponse response;
  response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  response.body = metrics.registry().RenderPrometheus();
  return response;
}

std::optional<metrics::Operation> RestOperation(std::string_view method, std::string_view path) {
  using metrics::Operation;
  if (path == "/healthz" || path == "/readyz" || path == kMetricsPath || path == "/iot/v1/openapi.yaml") {
    return std::nullopt;
  }
  const std::vector<std::string_view> s = SplitPath(path);
  // Event streams are counted by their own metrics (twins_rest_streams_*), not as requests.
  if (s.size() == 5 && s[2] == "regions" && s[4] == kTwinEventsSegment) return std::nullopt;
  const bool read = method == "GET" || method == "HEAD";
  if (s.size() == 6 && s[2] == "regions" && s[4] == "twins") {
    if (read) return Operation::kList;
    return method == "DELETE" ? Operation::kDeleteAll : Operation::kOther;
  }
  if (s.size() == 8 && s[2] == "regions" && s[4] == "twins" && s[6] == "documents") {
    if (read) return Operation::kGet;
    if (method == "PUT") return Operation::kPut;
    if (method == "PATCH") return Operation::kPatch;
    if (method == "DELETE") return Operation::kDelete;
  }
  return Operation::kOther;
}

void CountRestRequest(metrics::TwinsMetrics& metrics, const HttpRequest& request, const HttpResponse& response,
                      std::chrono::steady_clock::time_point start) {
  const std::optional<metrics::Operation> operation = RestOperation(request.method(), request.path());
  if (!operation) {
    if (response.status == 401) metrics.AuthFailure();
    return;
  }
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start);
  if (response.address_refused) {
    metrics.AddressRefused(*operation, static_cast<uint64_t>(nanos.count()));
    return;
  }
  metrics.Request(metrics::Api::kRest, *operation, metrics::OutcomeOfHttp(response.status),
                  static_cast<uint64_t>(nanos.count()), response.quota);
}

}  // namespace twins
