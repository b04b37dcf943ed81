// A small libcurl client for tests that talk to a real HTTP server. One HttpClient keeps
// one connection cache, so consecutive calls reuse a keep-alive connection.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace twins::test {

struct HttpCall {
  std::string method = "GET";
  std::string url;
  bool send_body = false;  // also sends an empty body when set
  std::string body;
  bool chunked = false;              // send the body with Transfer-Encoding: chunked
  std::vector<std::string> headers;  // "Name: value"; "Name:" removes one curl adds itself
  bool http10 = false;
  bool insecure_tls = false;   // accept a self-signed certificate
  std::string source_address;  // local address to connect from (e.g. 127.0.0.2); empty: any
  long timeout_ms = 20000;
};

struct HttpReply {
  long status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string error;                           // curl's error; empty when a reply came
  long new_connections = 0;                    // 0 when a kept-alive connection was reused

  bool has(const std::string& name) const { return headers.count(name) != 0; }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// Percent-encodes everything but RFC 3986 unreserved characters.
inline std::string UrlEncode(std::string_view text) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

class HttpClient {
 public:
  HttpClient() : curl_(curl_easy_init()) {}
  ~HttpClient() { curl_easy_cleanup(curl_); }
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Closes the kept-alive connection (a server waits up to its keep-alive timeout for it).
  void Disconnect() {
    curl_easy_cleanup(curl_);
    curl_ = curl_easy_init();
  }

  HttpReply Send(const HttpCall& call) {
    HttpReply reply;
    Upload upload{call.body, 0};
    curl_easy_reset(curl_);
    curl_easy_setopt(curl_, CURLOPT_URL, call.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, call.timeout_ms);
    if (!call.source_address.empty()) {
      const std::string interface = "host!" + call.source_address;
      curl_easy_setopt(curl_, CURLOPT_INTERFACE, interface.c_str());
    }
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_HTTP_VERSION, call.http10 ? CURL_HTTP_VERSION_1_0 : CURL_HTTP_VERSION_1_1);
    if (call.insecure_tls) {
      curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(curl_, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (call.method == "HEAD") {
      curl_easy_setopt(curl_, CURLOPT_NOBODY, 1L);
    } else if (call.method != "GET" || call.send_body) {
      curl_easy_setopt(curl_, CURLOPT_CUSTOMREQUEST, call.method.c_str());
    }
    if (call.chunked) {
      curl_easy_setopt(curl_, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(curl_, CURLOPT_READFUNCTION, &HttpClient::OnRead);
      curl_easy_setopt(curl_, CURLOPT_READDATA, &upload);
    } else if (call.send_body) {
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, call.body.data());
      curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(call.body.size()));
    }
    curl_slist* headers = nullptr;
    for (const std::string& header : call.headers) headers = curl_slist_append(headers, header.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &HttpClient::OnBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &reply);
    curl_easy_setopt(curl_, CURLOPT_HEADERFUNCTION, &HttpClient::OnHeader);
    curl_easy_setopt(curl_, CURLOPT_HEADERDATA, &reply);
    CURLcode code = curl_easy_perform(curl_);
    curl_slist_free_all(headers);
    if (code != CURLE_OK) reply.error = curl_easy_strerror(code);
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_easy_getinfo(curl_, CURLINFO_NUM_CONNECTS, &reply.new_connections);
    return reply;
  }

 private:
  struct Upload {
    const std::string& body;
    size_t offset;
  };

  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    static_cast<HttpReply*>(user)->body.append(data, size * count);
    return size * count;
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* reply = static_cast<HttpReply*>(user);
    std::string line(data, size * count);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.rfind("HTTP/", 0) == 0) {
      reply->headers.clear();  // a "100 Continue" came first
      return size * count;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t start = line.find_first_not_of(' ', colon + 1);
    reply->headers[name] = start == std::string::npos ? "" : line.substr(start);
    return size * count;
  }

  static size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
    auto* upload = static_cast<Upload*>(user);
    size_t n = std::min(size * count, upload->body.size() - upload->offset);
    upload->body.copy(buffer, n, upload->offset);
    upload->offset += n;
    return n;
  }

  CURL* curl_;
};

}  // namespace twins::test
