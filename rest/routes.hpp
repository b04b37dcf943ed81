// From a request to a response: public endpoints, authentication, path and method
// matching, then the twin endpoints. Never throws for bad input; the caller catches the
// rest (allocation failures, a throwing store).
#pragma once

#include <string>

#include "auth.hpp"
#include "documents.hpp"
#include "engine.hpp"
#include "http.hpp"
#include "log.hpp"
#include "rate_limiter.hpp"

namespace twins {

class Router {
 public:
  // `write_limiter` admits writes per twin; it must outlive the router.
  Router(Engine& engine, std::string region, TokenSet tokens, RateLimiter& write_limiter, LogFn log);

  // HEAD is answered like GET; the caller leaves the body out.
  HttpResponse Handle(HttpRequest& request) const;

 private:
  HttpResponse Health() const;

  Engine& engine_;
  const std::string region_;
  const TokenSet tokens_;
  LogFn log_;
  TwinEndpoints twins_;
};

}  // namespace twins
