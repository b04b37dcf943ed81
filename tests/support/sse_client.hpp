// A server-sent events client for tests: libcurl in a thread of its own reads one stream and
// parses its events as they come, so a test awaits events instead of sleeping.
#pragma once

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace twins::test {

struct SseEvent {
  std::string id;
  std::string event = "message";
  std::string data;
};

class SseClient {
 public:
  // Starts reading `url` at once; `headers` are "Name: value".
  SseClient(std::string url, std::vector<std::string> headers)
      : url_(std::move(url)), headers_(std::move(headers)), multi_(curl_multi_init()), thread_([this] { Run(); }) {}

  // Ends the stream from the client's side (the server notices at its next write).
  ~SseClient() {
    stop_ = true;
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
  }
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  // Until the stream is open (its first comment came) or over; false if it did not open.
  bool WaitOpen(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !comments_.empty() || done_; });
    return !comments_.empty();
  }
  // Until `count` events came in all, or the stream ended; the events so far.
  std::vector<SseEvent> WaitEvents(size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return events_.size() >= count || done_; });
    return events_;
  }
  // Until the server closed the stream (or the timeout); whether it did.
  bool WaitEnd(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return done_; });
  }
  // Until a comment line with this text came.
  bool WaitComment(const std::string& text, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout,
                        [&] { return std::find(comments_.begin(), comments_.end(), text) != comments_.end(); });
  }

  std::vector<SseEvent> events() {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  // Valid once the stream is open or over.
  long status() {
    std::lock_guard<std::mutex> lock(mutex_);
    return status_;
  }
  std::string header(const std::string& lower_name) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = response_headers_.find(lower_name);
    return it == response_headers_.end() ? std::string() : it->second;
  }
  // Everything received, for error bodies and failure messages.
  std::string body() {
    std::lock_guard<std::mutex> lock(mutex_);
    return raw_;
  }

 private:
  void Run() {
    CURL* curl = curl_easy_init();
    curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_slist* list = nullptr;
    for (const std::string& header : headers_) list = curl_slist_append(list, header.c_str());
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &SseClient::OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, this);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &SseClient::OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, this);
    curl_multi_add_handle(multi_, curl);
    int running = 1;
    while (running > 0 && !stop_) {
      curl_multi_perform(multi_, &running);
      if (running > 0) curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(multi_, curl);
    curl_easy_cleanup(curl);
    curl_slist_free_all(list);
    std::lock_guard<std::mutex> lock(mutex_);
    status_ = status;
    done_ = true;
    cv_.notify_all();
  }

  static size_t OnHeader(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<SseClient*>(user);
    std::string line(data, size * count);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    std::lock_guard<std::mutex> lock(self->mutex_);
    if (line.rfind("HTTP/", 0) == 0 && line.size() > 12) {
      self->status_ = std::stol(line.substr(9, 3));
      return size * count;
    }
    const size_t colon = line.find(':');
    if (colon == std::string::npos) return size * count;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    const size_t start = line.find_first_not_of(' ', colon + 1);
    self->response_headers_[name] = start == std::string::npos ? "" : line.substr(start);
    return size * count;
  }

  // Parses whole events (up to a blank line) out of what came so far.
  static size_t OnBody(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<SseClient*>(user);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->raw_.append(data, size * count);
    self->pending_.append(data, size * count);
    size_t end;
    while ((end = self->pending_.find("\n\n")) != std::string::npos) {
      const std::string block = self->pending_.substr(0, end);
      self->pending_.erase(0, end + 2);
      SseEvent event;
      bool has_field = false;
      size_t start = 0;
      while (start <= block.size()) {
        size_t newline = block.find('\n', start);
        if (newline == std::string::npos) newline = block.size();
        const std::string line = block.substr(start, newline - start);
        start = newline + 1;
        if (line.empty()) continue;
        if (line[0] == ':') {
          self->comments_.push_back(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1));
          continue;
        }
        const size_t colon = line.find(':');
        const std::string field = line.substr(0, colon);
        std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
        if (!value.empty() && value[0] == ' ') value.erase(0, 1);
        has_field = true;
        if (field == "id") event.id = value;
        if (field == "event") event.event = value;
        if (field == "data") event.data += event.data.empty() ? value : "\n" + value;
      }
      if (has_field) self->events_.push_back(std::move(event));
    }
    self->cv_.notify_all();
    return size * count;
  }

  const std::string url_;
  const std::vector<std::string> headers_;
  CURLM* multi_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  long status_ = 0;
  bool done_ = false;
  std::map<std::string, std::string> response_headers_;
  std::string raw_;
  std::string pending_;
  std::vector<std::string> comments_;
  std::vector<SseEvent> events_;
  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace twins::test
