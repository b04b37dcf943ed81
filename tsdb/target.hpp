// Where points go, from the `graphite_url` option:
//   tcp://host:port                    carbon's plaintext protocol (port required)
//   http://user:token@host[:port]/path Grafana Cloud style JSON over HTTP(S), basic auth
//   https://user:token@host[:port]/path
// Parsing is strict: any other scheme, a missing part (port; user or token), a part that
// does not belong (credentials, path or query on tcp://; a fragment) is an error naming it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace twins {

struct GraphiteTarget {
  enum class Kind { kCarbonTcp, kHttp };
  Kind kind = Kind::kCarbonTcp;
  std::string host;      // kCarbonTcp: name or address, IPv6 without brackets
  uint16_t port = 0;     // kCarbonTcp
  std::string url;       // kHttp: the URL without credentials
  std::string user;      // kHttp: percent-decoded
  std::string password;  // kHttp: percent-decoded
  std::string display;   // for logs: the URL without credentials
};

// Errors are InvalidArgument with field "graphite_url".
Result<GraphiteTarget> ParseGraphiteUrl(std::string_view url);

}  // namespace twins
