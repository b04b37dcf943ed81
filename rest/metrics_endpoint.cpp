#include "metrics_endpoint.hpp"

#include <vector>

#include "errors.hpp"
#include "path.hpp"

namespace twins {

std::string_view PresentedToken(const HttpRequest& request) {
  std::string_view token = request.header("X-Auth-Token");
  if (!token.empty()) return token;
  std::string_view authorization = request.header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  if (authorization.size() <= kBearer.size()) return {};
  for (size_t i = 0; i < kBearer.size(); ++i) {  // the scheme is case-insensitive (RFC 9110)
    const char c = authorization[i];
    if ((c | 0x20) != (kBearer[i] | 0x20)) return {};
  }
  authorization.remove_prefix(kBearer.size());
  while (!authorization.empty() && authorization.front() == ' ') authorization.remove_prefix(1);
  return authorization;
}

HttpResponse ServeMetrics(const HttpRequest& request, const TokenSet& tokens, bool allow_anonymous,
                          const metrics::TwinsMetrics& metrics) {
  const std::string_view method = request.method();
  if (method != "GET" && method != "HEAD") return MethodNotAllowed(method, "GET, HEAD");
  if (!allow_anonymous) {
    const std::string_view token = PresentedToken(request);
    if (!tokens.Accepts(token)) {
      return DeniedAuthentication(token.empty()
                                      ? "authentication is denied: no X-Auth-Token or Authorization: Bearer header"
                                      : "authentication is denied: invalid token");
    }
  }
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
  metrics.Request(metrics::Api::kRest, *operation, metrics::OutcomeOfHttp(response.status),
                  static_cast<uint64_t>(nanos.count()), response.quota);
}

}  // namespace twins
