// GET /metrics on the REST port: the metrics in the Prometheus text format (0.0.4), and the
// counting of REST requests into them.
//
// /metrics takes a token like the rest of the API, in X-Auth-Token or as
// `Authorization: Bearer <token>` (what Prometheus sends with `authorization: {credentials: …}`),
// or none when anonymous scraping was allowed (plugin_opt_metrics_allow_anonymous).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "rest/auth.hpp"
#include "rest/http.hpp"
#include "metrics/twins_metrics.hpp"

namespace twins {

inline constexpr std::string_view kMetricsPath = "/metrics";

// The reply to an authorised GET /metrics (the router authenticates it like any call, through
// the same failed-token guard).
HttpResponse MetricsResponse(const metrics::TwinsMetrics& metrics);

// The twin operation a request names, by method and path; nullopt for the endpoints that are
// not twin requests (/healthz, /metrics, the OpenAPI description, the event streams), which
// are not counted as requests.
std::optional<metrics::Operation> RestOperation(std::string_view method, std::string_view path);

// Counts one answered REST request (or an authentication failure on /metrics).
void CountRestRequest(metrics::TwinsMetrics& metrics, const HttpRequest& request, const HttpResponse& response,
                      std::chrono::steady_clock::time_point start);

}  // namespace twins
