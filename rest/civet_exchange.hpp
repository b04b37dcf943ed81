// The HttpRequest/HttpResponse exchange over a CivetWeb connection: reading the body within a
// limit, and writing a whole reply (status line, headers, body) in one write.
#pragma once

#include <cstddef>
#include <string_view>

#include "rest/http.hpp"

struct mg_connection;
struct mg_request_info;

namespace twins {

class CivetRequest final : public HttpRequest {
 public:
  explicit CivetRequest(mg_connection* conn);

  std::string_view method() const override;
  // decode_url is off, so this is the path exactly as sent (minus the query).
  std::string_view path() const override;
  std::string_view query() const override;
  std::string_view header(const char* name) const override;
  std::string_view peer() const override;
  BodyRead ReadBody(size_t max_bytes) override;

  bool chunked() const;
  bool has_body() const;
  bool body_read() const { return body_read_; }
  bool http10() const;
  long long content_length() const;

 private:
  mg_connection* conn_;
  const mg_request_info* info_;
  bool body_read_ = false;
};

// CivetWeb decides on keep-alive from the request alone; the Connection header sent here
// states the same decision. AfterReply::kClose forces the connection closed. A HEAD reply has
// the headers of the full reply and no body.
enum class AfterReply { kKeepIfAsked, kClose };
void SendResponse(mg_connection* conn, const HttpResponse& response, const CivetRequest* request, AfterReply after);

// Last resort when even the internal-error reply could not be built (rest/errors.cpp builds
// every JSON error): a bare 500 without body, no allocation, connection closed.
void SendInternalError(mg_connection* conn) noexcept;

}  // namespace twins
