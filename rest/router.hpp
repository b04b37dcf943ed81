// From a request to a response: public endpoints, authentication, path and method
// matching, then the twin endpoints. Never throws for bad input; the caller catches the
// rest (allocation failures, a throwing store).
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "rest/auth.hpp"
#include "rest/auth_guard.hpp"
#include "rest/cors.hpp"
#include "rest/event_stream.hpp"
#include "rest/twin_endpoints.hpp"
#include "engine/engine.hpp"
#include "rest/http.hpp"
#include "common/log.hpp"
#include "metrics/twins_metrics.hpp"
#include "engine/rate_limiter.hpp"
#include "rest/rest_server.hpp"

namespace twins {

class Router {
 public:
  // Takes region, tokens, CORS origins and the Graphite probe from `options`. `write_limiter`
  // admits writes per twin, `guard` failed authentications per address, `events` serves the
  // event streams; all must outlive the router.
  Router(Engine& engine, const RestOptions& options, RateLimiter& write_limiter, AuthGuard& guard, EventStreams& events,
         const LogFn& log);

  // HEAD is answered like GET; the caller leaves the body out.
  HttpResponse Handle(HttpRequest& request) const;

 private:
  HttpResponse Dispatch(HttpRequest& request) const;
  // Empty when authenticated; otherwise the refusal to send.
  std::optional<HttpResponse> Authenticate(const HttpRequest& request) const;
  HttpResponse Health() const;

  Engine& engine_;
  const std::string region_;
  const TokenSet tokens_;
  AuthGuard& guard_;
  const Cors cors_;
  const std::function<bool()> graphite_reachable_;
  const metrics::TwinsMetrics* const metrics_;  // nullptr: no /metrics
  const bool metrics_anonymous_;
  LogFn log_;
  TwinEndpoints twins_;
  EventStreams& events_;
};

}  // namespace twins
