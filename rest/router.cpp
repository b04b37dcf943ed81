#include "rest/router.hpp"

#include "rest/metrics_endpoint.hpp"

#include <optional>
#include <string_view>
#include <vector>

#include "rest/errors.hpp"
#include "engine/json.hpp"
#include "rest/openapi.hpp"
#include "rest/path.hpp"

namespace twins {
namespace {

constexpr std::string_view kHealthPath = "/healthz";
constexpr std::string_view kOpenApiPath = "/iot/v1/openapi.yaml";
constexpr std::string_view kHealthTwin = "_healthz";
constexpr std::string_view kHealthDocument = "health";
constexpr std::string_view kReadOnly = "GET, HEAD";
constexpr std::string_view kTwinMethods = "GET, HEAD, DELETE";
constexpr std::string_view kDocumentMethods = "GET, HEAD, PUT, PATCH, DELETE";
constexpr std::string_view kEventsMethods = "GET";

// /iot/v1/regions/{region}/twins/{twin_id}[/documents/{document_name}], /iot/v1/regions/{region}/twin-events
enum class Route { kNone, kTwin, kDocument, kEvents };

Route Match(const std::vector<std::string_view>& s) {
  if (s.size() < 5 || s[0] != "iot" || s[1] != "v1" || s[2] != "regions") return Route::kNone;
  if (s.size() == 5) return s[4] == kTwinEventsSegment ? Route::kEvents : Route::kNone;
  if (s[4] != "twins") return Route::kNone;
  if (s.size() == 6) return Route::kTwin;
  if (s.size() == 8 && s[6] == "documents") return Route::kDocument;
  return Route::kNone;
}

bool Allowed(std::string_view method, Route route) {
  if (route == Route::kEvents) return method == "GET";
  if (method == "GET" || method == "HEAD" || method == "DELETE") return true;
  return route == Route::kDocument && (method == "PUT" || method == "PATCH");
}

HttpResponse OpenApi() {
  HttpResponse response;
  response.content_type = "application/yaml";
  response.body = std::string(OpenApiYaml());
  return response;
}

}  // namespace

Router::Router(Engine& engine, const RestOptions& options, RateLimiter& write_limiter, AuthGuard& guard,
               EventStreams& events, const LogFn& log)
    : engine_(engine),
      region_(options.region),
      tokens_(options.tokens),
      guard_(guard),
      cors_(options.cors_origins),
      graphite_reachable_(options.graphite_reachable),
      metrics_(options.metrics),
      metrics_anonymous_(options.metrics_allow_anonymous),
      log_(log),
      twins_(engine, write_limiter, log),
      events_(events) {}

HttpResponse Router::Handle(HttpRequest& request) const {
  if (std::optional<HttpResponse> preflight = cors_.Preflight(request)) return std::move(*preflight);
  HttpResponse response = Dispatch(request);
  cors_.Decorate(request, response);
  return response;
}

// X-Auth-Token, or Authorization: Bearer (RFC 6750). A guessing address is refused before
// its token is looked at, so the refusal tells nothing about the guess.
std::optional<HttpResponse> Router::Authenticate(const HttpRequest& request) const {
  if (tokens_.anonymous()) return std::nullopt;
  if (const uint64_t ms = guard_.RefusedFor(request.peer())) return TooManyFailedAuthentications(ms);
  std::string_view token = request.header("X-Auth-Token");
  bool bearer = false;
  if (token.empty()) {
    std::string_view authorization = request.header("Authorization");
    if (authorization.size() > 7 && EqualsIgnoreCase(authorization.substr(0, 7), "bearer ")) {
      token = authorization.substr(7);
      while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
      while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
      bearer = true;
    }
  }
  if (!token.empty() && tokens_.Accepts(token)) return std::nullopt;
  const char* why = token.empty() ? "no token" : bearer ? "invalid bearer token" : "invalid X-Auth-Token";
  guard_.Failed(request.peer(), why);
  HttpResponse denied = DeniedAuthentication(
      token.empty() ? "authentication is denied: the X-Auth-Token (or Authorization: Bearer) "
                      "header is missing"
                    : std::string("authentication is denied: ") + why);
  denied.headers.emplace_back("WWW-Authenticate", "Bearer");
  return denied;
}

HttpResponse Router::Dispatch(HttpRequest& request) const {
  const std::string_view path = request.path();
  const std::string_view method = request.method();
  const bool read_only = method == "GET" || method == "HEAD";

  if (path == kHealthPath) return read_only ? Health() : MethodNotAllowed(method, kReadOnly);
  if (path == kOpenApiPath) return read_only ? OpenApi() : MethodNotAllowed(method, kReadOnly);
  if (metrics_ != nullptr && path == kMetricsPath) {
    if (!read_only) return MethodNotAllowed(method, kReadOnly);
    if (!metrics_anonymous_) {
      if (std::optional<HttpResponse> denied = Authenticate(request)) return std::move(*denied);
    }
    return MetricsResponse(*metrics_);
  }

  // Before routing, so that without a token nothing is learnt about the API either.
  if (std::optional<HttpResponse> denied = Authenticate(request)) return std::move(*denied);

  const std::vector<std::string_view> segments = SplitPath(path);
  const Route route = Match(segments);
  if (route == Route::kNone) {
    return NotFound("path", IsValidUtf8(path) ? path : std::string_view(), "no such endpoint");
  }
  if (!Allowed(method, route)) {
    return MethodNotAllowed(method, route == Route::kTwin     ? kTwinMethods
                                    : route == Route::kEvents ? kEventsMethods
                                                              : kDocumentMethods);
  }

  std::optional<std::string> region = PercentDecode(segments[3]);
  if (!region || *region != region_) {
    const std::string_view shown = region && IsValidUtf8(*region) ? std::string_view(*region) : std::string_view();
    return NotFound("region", shown, "unknown region, this server serves " + region_);
  }
  if (route == Route::kEvents) return events_.Open(request);
  std::optional<std::string> twin = PercentDecode(segments[5]);
  if (!twin) return InvalidArgument("twin_id", "format", "the twin id has an invalid percent-encoding");

  if (route == Route::kTwin) {
    return method == "DELETE" ? twins_.DeleteAll(*twin) : twins_.List(*twin);
  }
  std::optional<std::string> doc = PercentDecode(segments[7]);
  if (!doc) return InvalidArgument("document_name", "format", "the document name has an invalid percent-encoding");
  if (read_only) return twins_.Get(request, *twin, *doc);
  if (method == "PUT") return twins_.Put(request, *twin, *doc);
  if (method == "PATCH") return twins_.Patch(request, *twin, *doc);
  return twins_.Delete(request, *twin, *doc);
}

// A point read of a document that never exists: it goes through the store like any read,
// and is about the cheapest thing the store does, so /healthz stays a near-trivial baseline.
// Then whether writes are accepted (503 with the store's reason while they are refused), and
// whether Graphite is reachable, which is reported but never fails health.
HttpResponse Router::Health() const {
  auto found = engine_.Get(kHealthTwin, kHealthDocument);
  if (!found.ok() && found.status().code() != Code::kNotFound) {
    if (log_) log_(LogLevel::kWarning, "REST: health check failed: " + found.status().message());
    return Unavailable("the twin store is not usable");
  }
  const std::string graphite = !graphite_reachable_ ? "off" : graphite_reachable_() ? "reachable" : "unreachable";
  const Status writable = engine_.Writable();
  if (!writable.ok()) {
    return WritesRefused(writable.message(), graphite);
  }
  return JsonResponse(200, "{\"status\":\"ok\",\"graphite\":\"" + graphite + "\"}");
}

}  // namespace twins
