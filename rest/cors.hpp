// Cross-origin access for back-ends that are web pages (CORS). Only the configured origins,
// compared exactly (scheme, host and port, as browsers send them in Origin), get
// Access-Control-* headers; every other origin gets none, so browsers keep its pages from
// reading replies or sending the non-simple requests the API needs. With no origin
// configured, nothing changes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rest/http.hpp"

namespace twins {

class Cors {
 public:
  explicit Cors(std::vector<std::string> origins) : origins_(std::move(origins)) {}

  // The reply to a preflight (OPTIONS with Access-Control-Request-Method) from a listed
  // origin; nullopt for anything else.
  std::optional<HttpResponse> Preflight(const HttpRequest& request) const;
  // Adds the headers a listed origin may read the response with (ETag among them).
  void Decorate(const HttpRequest& request, HttpResponse& response) const;

 private:
  bool Listed(std::string_view origin) const;
  std::vector<std::string> origins_;
};

}  // namespace twins
