#include "rest/cors.hpp"

namespace twins {
namespace {

constexpr char kAllowMethods[] = "GET, HEAD, PUT, PATCH, DELETE";
// Request headers the API reads; Content-Type is not "simple" for application/json.
constexpr char kAllowHeaders[] = "X-Auth-Token, Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID";
// Response headers a page may read beyond the simple ones: ETag feeds If-Match.
constexpr char kExposeHeaders[] = "ETag, Retry-After, Allow";
constexpr char kMaxAgeSeconds[] = "600";

}  // namespace

bool Cors::Listed(std::string_view origin) const {
  if (origin.empty()) return false;
  for (const std::string& listed : origins_) {
    if (listed == origin) return true;
  }
  return false;
}

std::optional<HttpResponse> Cors::Preflight(const HttpRequest& request) const {
  if (origins_.empty() || request.method() != "OPTIONS" || request.header("Access-Control-Request-Method").empty()) {
    return std::nullopt;
  }
  const std::string_view origin = request.header("Origin");
  if (!Listed(origin)) return std::nullopt;
  HttpResponse response;
  response.status = 204;
  response.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
  response.headers.emplace_back("Access-Control-Allow-Methods", kAllowMethods);
  response.headers.emplace_back("Access-Control-Allow-Headers", kAllowHeaders);
  response.headers.emplace_back("Access-Control-Max-Age", kMaxAgeSeconds);
  response.headers.emplace_back("Vary", "Origin");
  return response;
}

void Cors::Decorate(const HttpRequest& request, HttpResponse& response) const {
  if (origins_.empty()) return;
  // The reply depends on Origin whenever origins are configured: caches must not mix them.
  response.headers.emplace_back("Vary", "Origin");
  const std::string_view origin = request.header("Origin");
  if (!Listed(origin)) return;
  response.headers.emplace_back("Access-Control-Allow-Origin", std::string(origin));
  response.headers.emplace_back("Access-Control-Expose-Headers", kExposeHeaders);
}

}  // namespace twins
