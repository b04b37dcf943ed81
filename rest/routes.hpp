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

namespace twins {

class Router {
 public:
  Router(Engine& engine, std::string region, TokenSet tokens, LogFn log);

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
