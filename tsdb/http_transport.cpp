// Grafana Cloud style Graphite ingestion: the JSON array of points, POSTed with basic auth.
#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <string>

#include "tsdb/transport.hpp"

namespace twins {
namespace {

constexpr size_t kMaxErrorBody = 300;  // of a refusal, kept for the log line

// Keeps the start of the response body, printable, for an error message.
size_t KeepBody(char* data, size_t size, size_t count, void* userdata) {
  auto* body = static_cast<std::string*>(userdata);
  for (size_t i = 0; i < size * count && body->size() < kMaxErrorBody; ++i) {
    const auto c = static_cast<unsigned char>(data[i]);
    *body += c < 0x20 || c == 0x7F ? ' ' : static_cast<char>(c);
  }
  return size * count;
}

class HttpTransport final : public Transport {
 public:
  HttpTransport(GraphiteTarget target, int interval_seconds)
      : target_(std::move(target)), interval_seconds_(interval_seconds) {
    static std::once_flag global_init;
    std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    curl_ = curl_easy_init();
    // "Expect:" turns off the 100-continue round trip curl makes before larger bodies.
    for (const char* header : {"Content-Type: application/json", "Expect:"}) {
      curl_slist* longer = curl_slist_append(headers_, header);
      if (longer == nullptr) {
        curl_slist_free_all(headers_);
        headers_ = nullptr;
        break;
      }
      headers_ = longer;
    }
  }
  ~HttpTransport() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
  }

  Status Send(const std::vector<EncodedPoint>& batch, Deadline deadline) override {
    if (curl_ == nullptr || headers_ == nullptr) return Status::Internal("libcurl could not be initialised");
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                            std::chrono::steady_clock::now());
    if (left.count() <= 0) return Status::Internal("no time left to post to " + target_.display);
    const std::string payload = GraphiteJson(batch, interval_seconds_);
    std::string body;

    curl_easy_reset(curl_);  // keeps the open connection
    curl_easy_setopt(curl_, CURLOPT_URL, target_.url.c_str());
    curl_easy_setopt(curl_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);  // we run on our own thread, beside the broker's signals
    curl_easy_setopt(curl_, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl_, CURLOPT_USERNAME, target_.user.c_str());
    curl_easy_setopt(curl_, CURLOPT_PASSWORD, target_.password.c_str());
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, payload.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(payload.size()));
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, static_cast<long>(left.count()));
    curl_easy_setopt(curl_, CURLOPT_USERAGENT, "mosquitto-twins");
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, KeepBody);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &body);

    const CURLcode rc = curl_easy_perform(curl_);
    if (rc != CURLE_OK) return Status::Internal("posting to " + target_.display + ": " + curl_easy_strerror(rc));
    long http = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &http);
    if (http >= 200 && http < 300) return Status::Ok();
    const std::string message = target_.display + " answered HTTP " + std::to_string(http) + ": " + body;
    // A malformed or oversized batch stays so; anything else (auth, rate limit, outage) may pass later.
    if (http == 400 || http == 413 || http == 422) return Status::InvalidArgument("points", message);
    return Status::Internal(message);
  }

 private:
  GraphiteTarget target_;
  int interval_seconds_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
};

}  // namespace

std::unique_ptr<Transport> MakeHttpTransport(const GraphiteTarget& target, int interval_seconds) {
  return std::make_unique<HttpTransport>(target, interval_seconds);
}

}  // namespace twins
