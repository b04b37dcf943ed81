#include "rest/civet_exchange.hpp"

#include <civetweb.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string>

#include "rest/http_time.hpp"

namespace twins {
namespace {

bool HasToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// The Date header, formatted once per second per thread.
std::string CurrentHttpDate() {
  thread_local time_t cached_second = 0;
  thread_local std::string cached;
  const time_t now = time(nullptr);
  if (now != cached_second) {
    cached = HttpDate(now);
    cached_second = now;
  }
  return cached;
}

// mg_write gives up on a client that takes nothing for request_timeout_ms, or once the
// server is stopping.
bool WriteAll(mg_connection* conn, std::string_view bytes) {
  return mg_write(conn, bytes.data(), bytes.size()) == static_cast<int>(bytes.size());
}

class CivetStreamWriter final : public HttpStreamWriter {
 public:
  explicit CivetStreamWriter(mg_connection* conn) : conn_(conn) {}
  bool Write(std::string_view bytes) override { return WriteAll(conn_, bytes); }

 private:
  mg_connection* conn_;
};

}  // namespace

CivetRequest::CivetRequest(mg_connection* conn) : conn_(conn), info_(mg_get_request_info(conn)) {}

std::string_view CivetRequest::method() const { return info_->request_method ? info_->request_method : ""; }

std::string_view CivetRequest::path() const { return info_->local_uri_raw ? info_->local_uri_raw : ""; }

std::string_view CivetRequest::query() const { return info_->query_string ? info_->query_string : ""; }

std::string_view CivetRequest::header(const char* name) const {
  const char* value = mg_get_header(conn_, name);
  return value ? value : "";
}

std::string_view CivetRequest::peer() const { return info_->remote_addr; }

bool CivetRequest::chunked() const { return EqualsIgnoreCase(header("Transfer-Encoding"), "chunked"); }

bool CivetRequest::has_body() const { return chunked() || info_->content_length > 0; }

bool CivetRequest::http10() const { return info_->http_version && std::strcmp(info_->http_version, "1.0") == 0; }

long long CivetRequest::content_length() const { return info_->content_length; }

BodyRead CivetRequest::ReadBody(size_t max_bytes) {
  BodyRead read;
  if (!has_body()) {
    body_read_ = true;
    return read;
  }
  const bool is_chunked = chunked();
  if (!is_chunked && static_cast<unsigned long long>(info_->content_length) > max_bytes) {
    read.outcome = BodyRead::Outcome::kTooLarge;
    read.length = info_->content_length;
    return read;
  }
  // CivetWeb 1.15 only answers "100 Continue" for its own file and CGI handlers.
  if (EqualsIgnoreCase(header("Expect"), "100-continue") && !http10()) {
    mg_printf(conn_, "HTTP/1.1 100 Continue\r\n\r\n");
  }
  const size_t wanted = is_chunked ? max_bytes + 1 : static_cast<size_t>(info_->content_length);
  read.text.resize(is_chunked ? std::min<size_t>(wanted, 16384) : wanted);
  size_t got = 0;
  while (got < wanted) {
    if (got == read.text.size()) read.text.resize(std::min(wanted, 2 * read.text.size()));
    int n = mg_read(conn_, &read.text[got], read.text.size() - got);
    if (n < 0) {
      read.outcome = BodyRead::Outcome::kFailed;
      return read;
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  read.text.resize(got);
  if (is_chunked && got > max_bytes) {
    read.outcome = BodyRead::Outcome::kTooLarge;
    read.length = -1;
    read.text.clear();
    return read;
  }
  if (!is_chunked && got != wanted) {
    read.outcome = BodyRead::Outcome::kFailed;
    return read;
  }
  body_read_ = true;
  return read;
}

void SendResponse(mg_connection* conn, const HttpResponse& response, const CivetRequest* request, AfterReply after) {
  const bool head = request != nullptr && request->method() == "HEAD";
  const bool http10 = request != nullptr && request->http10();
  const std::string_view client_connection = request != nullptr ? request->header("Connection") : "";
  const bool bodyless = response.status == 204 || response.status == 304;
  std::string out;
  out.reserve(response.body.size() + 256);
  out += "HTTP/1.1 ";
  out += std::to_string(response.status);
  out += ' ';
  out += mg_get_response_code_text(conn, response.status);
  out += "\r\nDate: ";
  out += CurrentHttpDate();
  out += "\r\n";
  if (!response.content_type.empty()) {
    out += "Content-Type: ";
    out += response.content_type;
    out += "\r\n";
  }
  const bool streamed = static_cast<bool>(response.stream);
  if (!bodyless && !streamed) {
    out += "Content-Length: ";
    out += std::to_string(response.body.size());
    out += "\r\n";
  }
  if (!response.etag.empty()) {
    out += "ETag: ";
    out += response.etag;
    out += "\r\n";
  }
  if (!response.retry_after.empty()) {
    out += "Retry-After: ";
    out += response.retry_after;
    out += "\r\n";
  }
  if (!response.allow.empty()) {
    out += "Allow: ";
    out += response.allow;
    out += "\r\n";
  }
  for (const auto& [name, value] : response.headers) {
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (after == AfterReply::kClose || streamed) {  // a streamed body ends with the connection
    mg_disable_connection_keep_alive(conn);
    out += "Connection: close\r\n";
  } else if (http10 && HasToken(client_connection, "keep-alive")) {
    out += "Connection: keep-alive\r\n";
  } else if (HasToken(client_connection, "close")) {
    out += "Connection: close\r\n";
  }
  out += "\r\n";
  if (streamed) {
    if (!WriteAll(conn, out) || head) return;
    CivetStreamWriter writer(conn);
    response.stream(writer);
    return;
  }
  if (!head && !bodyless) out += response.body;
  mg_write(conn, out.data(), out.size());
}

void SendInternalError(mg_connection* conn) noexcept {
  static constexpr char kReply[] =
      "HTTP/1.1 500 Internal Server Error\r\n"
      "Content-Length: 0\r\n"
      "Connection: close\r\n"
      "\r\n";
  mg_disable_connection_keep_alive(conn);
  mg_write(conn, kReply, sizeof(kReply) - 1);
}

}  // namespace twins
