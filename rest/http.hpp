// The HTTP exchange as the routes see it. civet_exchange.cpp implements it over CivetWeb,
// so the routes and endpoints never see civetweb.h.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace twins {

// ASCII case-insensitive equality, as header names, tokens and auth schemes compare.
inline bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Where a streamed body goes (server-sent events), piece by piece as it is produced.
class HttpStreamWriter {
 public:
  virtual ~HttpStreamWriter() = default;
  // Sends `bytes` at once (no buffering); false when the client is gone or did not take them
  // within the server's write timeout: the stream must then end.
  virtual bool Write(std::string_view bytes) = 0;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty when there is no body
  std::string body;
  std::string etag;              // full header value, quotes included; empty for none
  std::string allow;             // for 405
  std::string retry_after;       // seconds, for 429
  std::string quota;             // not sent: the resource of a 403 quota error, for the metrics
  bool address_refused = false;  // not sent: a 429 of the auth guard, not of the rate limit (metrics)
  std::vector<std::pair<std::string, std::string>> headers;  // any others (CORS, WWW-Authenticate)
  // When set, the body: called once the headers are sent, on the request's thread, for as long
  // as the stream lasts; `body` is ignored, and the connection closes when it returns.
  std::function<void(HttpStreamWriter&)> stream;
};

struct BodyRead {
  enum class Outcome { kOk, kTooLarge, kFailed };
  Outcome outcome = Outcome::kOk;
  std::string text;
  long long length = 0;  // bytes announced or seen when kTooLarge
};

class HttpRequest {
 public:
  virtual ~HttpRequest() = default;
  virtual std::string_view method() const = 0;
  // The path as sent, still percent-encoded, without the query string.
  virtual std::string_view path() const = 0;
  // The query string as sent, without the '?'; empty when there is none.
  virtual std::string_view query() const = 0;
  // Empty when absent.
  virtual std::string_view header(const char* name) const = 0;
  // The client's address as text (IPv4 or IPv6), for per-client accounting.
  virtual std::string_view peer() const = 0;
  // Reads the whole body if it is at most max_bytes. A body announced larger is not read
  // at all; a chunked body is read no further than max_bytes + 1.
  virtual BodyRead ReadBody(size_t max_bytes) = 0;
};

}  // namespace twins
