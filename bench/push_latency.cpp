// push_latency: how long a REST write takes to reach a device watching the document.
//
// One device (libmosquitto, TCP_NODELAY, QoS 1) watches $SCW/twins/me/<doc>; a back-end
// (libcurl, one kept-alive connection) PUTs the document N times, one at a time. Each sample
// is the time from just before the PUT is sent to the arrival of its `updated` push, and the
// REST round trip alone is kept beside it.
//
//   push_latency --port P --rest-port R --token T [--writes 1000] [--client push-watcher]
//                [--doc desired] [--label text]
//
// Prints one JSON line on stdout.
#include <curl/curl.h>
#include <mosquitto.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Watcher {
  std::mutex mutex;
  std::condition_variable changed;
  bool connected = false;
  bool watching = false;
  long last_version = -1;
  Clock::time_point last_arrival;
};

void OnConnect(mosquitto*, void* self, int rc) {
  auto* w = static_cast<Watcher*>(self);
  std::lock_guard<std::mutex> lock(w->mutex);
  w->connected = rc == 0;
  w->changed.notify_all();
}

void OnMessage(mosquitto*, void* self, const mosquitto_message* message) {
  auto* w = static_cast<Watcher*>(self);
  const Clock::time_point now = Clock::now();
  const std::string topic = message->topic;
  const std::string payload(static_cast<const char*>(message->payload), message->payloadlen);
  std::lock_guard<std::mutex> lock(w->mutex);
  if (topic.find("/watch/response/success") != std::string::npos) w->watching = true;
  if (topic.size() > 8 && topic.compare(topic.size() - 8, 8, "/updated") == 0) {
    const size_t at = payload.find("\"version\":");
    if (at != std::string::npos) w->last_version = std::strtol(payload.c_str() + at + 10, nullptr, 10);
    w->last_arrival = now;
  }
  w->changed.notify_all();
}

size_t Collect(char* data, size_t size, size_t count, void* body) {
  static_cast<std::string*>(body)->append(data, size * count);
  return size * count;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  return values[std::min(values.size() - 1, static_cast<size_t>(p * static_cast<double>(values.size())))];
}

[[noreturn]] void Fail(const std::string& why) {
  std::fprintf(stderr, "push_latency: %s\n", why.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, rest_port = 0, writes = 1000;
  std::string token, client = "push-watcher", doc = "desired", label;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--port")
      port = std::atoi(value.c_str());
    else if (flag == "--rest-port")
      rest_port = std::atoi(value.c_str());
    else if (flag == "--token")
      token = value;
    else if (flag == "--writes")
      writes = std::atoi(value.c_str());
    else if (flag == "--client")
      client = value;
    else if (flag == "--doc")
      doc = value;
    else if (flag == "--label")
      label = value;
    else
      Fail("unknown option " + flag);
  }
  if (port == 0 || rest_port == 0 || token.empty()) Fail("usage: --port P --rest-port R --token T [--writes N]");

  mosquitto_lib_init();
  Watcher watcher;
  mosquitto* mosq = mosquitto_new(client.c_str(), true, &watcher);
  mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_connect_callback_set(mosq, OnConnect);
  mosquitto_message_callback_set(mosq, OnMessage);
  if (mosquitto_connect(mosq, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) Fail("cannot connect");
  mosquitto_loop_start(mosq);
  {
    std::unique_lock<std::mutex> lock(watcher.mutex);
    if (!watcher.changed.wait_for(lock, std::chrono::seconds(10), [&] { return watcher.connected; })) {
      Fail("no CONNACK");
    }
  }
  const std::string watch = "$SCW/twins/me/" + doc + "/watch";
  mosquitto_publish(mosq, nullptr, watch.c_str(), 0, "", 1, false);
  {
    std::unique_lock<std::mutex> lock(watcher.mutex);
    if (!watcher.changed.wait_for(lock, std::chrono::seconds(10), [&] { return watcher.watching; })) {
      Fail("no watch reply");
    }
  }

  CURL* curl = curl_easy_init();
  const std::string url = "http://127.0.0.1:" + std::to_string(rest_port) + "/iot/v1/regions/fr-par/twins/" + client +
                          "/documents/" + doc;
  curl_slist* headers = curl_slist_append(nullptr, ("X-Auth-Token: " + token).c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  std::string reply;
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);

  std::vector<double> push_ms, rest_ms;
  int lost = 0;
  for (int n = 0; n < writes; ++n) {
    const std::string body = "{\"data\":{\"n\":" + std::to_string(n) + "}}";
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    reply.clear();
    const Clock::time_point start = Clock::now();
    if (curl_easy_perform(curl) != CURLE_OK) Fail("PUT failed");
    const Clock::time_point answered = Clock::now();
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) Fail("PUT answered " + std::to_string(status));
    const size_t at = reply.find("\"version\":");
    if (at == std::string::npos) Fail("no version in the PUT reply");
    const long version = std::strtol(reply.c_str() + at + 10, nullptr, 10);
    std::unique_lock<std::mutex> lock(watcher.mutex);
    if (!watcher.changed.wait_for(lock, std::chrono::seconds(5), [&] { return watcher.last_version >= version; })) {
      ++lost;
      continue;
    }
    push_ms.push_back(std::chrono::duration<double, std::milli>(watcher.last_arrival - start).count());
    rest_ms.push_back(std::chrono::duration<double, std::milli>(answered - start).count());
  }
  std::printf(
      "{\"label\":\"%s\",\"writes\":%d,\"lost\":%d,\"push_p50_ms\":%.3f,\"push_p99_ms\":%.3f,\"push_max_ms\":%.3f,"
      "\"rest_p50_ms\":%.3f,\"rest_p99_ms\":%.3f}\n",
      label.c_str(), writes, lost, Percentile(push_ms, 0.5), Percentile(push_ms, 0.99), Percentile(push_ms, 1.0),
      Percentile(rest_ms, 0.5), Percentile(rest_ms, 0.99));
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  mosquitto_disconnect(mosq);
  mosquitto_loop_stop(mosq, false);
  mosquitto_destroy(mosq);
  mosquitto_lib_cleanup();
  return lost == 0 ? 0 : 1;
}
