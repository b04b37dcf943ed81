// REST under slow and idle clients, with the engine and RestServer in this
// process (no broker): `attackers` connections, half sending nothing, half sending a request
// head one byte a second, each reopened as soon as the server closes it, while one client
// makes calls (a new connection each: /healthz and an authenticated GET, alternately) for
// `seconds`. Prints the share answered within 1 s and latency percentiles; then the memory a
// REST thread costs (RSS of the server with 4 threads and with `threads`).
//
//   rest_attack_bench [threads=64] [request_timeout_ms=10000] [attackers=32] [seconds=30]
//
// The old defaults were 4 threads and CivetWeb's 30 000 ms.
#include <curl/curl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "rest/rest_server.hpp"
#include "tests/support/loopback.hpp"

namespace {

using twins::test::ConnectLoopback;

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "bench-token";

void Attack(int port, bool trickle, const std::atomic<bool>& stop) {
  const std::string head = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(4096, 'a');
  while (!stop) {
    int fd = ConnectLoopback(port);
    if (fd < 0) continue;
    for (size_t sent = 0; !stop;) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, trickle ? 1000 : 100) != 0) break;  // closed by the server
      if (trickle && send(fd, head.data() + sent++ % head.size(), 1, MSG_NOSIGNAL) != 1) break;
    }
    close(fd);
  }
}

long RssKib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

size_t Discard(char*, size_t size, size_t count, void*) { return size * count; }

twins::Result<std::unique_ptr<twins::RestServer>> Serve(twins::Engine& engine, int threads, int timeout_ms) {
  twins::RestOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = threads;
  options.request_timeout_ms = timeout_ms;
  options.tokens = {kToken};
  return twins::RestServer::Start(options, engine, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 64;
  const int timeout_ms = argc > 2 ? std::atoi(argv[2]) : 10000;
  const int attackers = argc > 3 ? std::atoi(argv[3]) : 32;
  const int seconds = argc > 4 ? std::atoi(argv[4]) : 30;

  char dir_template[] = "/tmp/rest-attack-bench-XXXXXX";
  const std::string dir = mkdtemp(dir_template);
  auto store = twins::OpenRocksDbStore(dir + "/db");
  if (!store.ok()) return std::fprintf(stderr, "%s\n", store.status().message().c_str()), 1;
  twins::Engine engine(std::move(store).value(), twins::Limits());
  twins::WriteRequest request;
  request.data = R"({"a":1})";
  if (!engine.Put("dev1", "d", request).ok()) return 1;

  // Memory per thread: the same server with 4 threads, then with `threads`.
  long with_four = 0, with_many = 0;
  {
    const long before = RssKib();
    auto server = Serve(engine, 4, timeout_ms);
    if (!server.ok()) return std::fprintf(stderr, "%s\n", server.status().message().c_str()), 1;
    with_four = RssKib() - before;
  }
  auto started = Serve(engine, threads, timeout_ms);
  if (!started.ok()) return std::fprintf(stderr, "%s\n", started.status().message().c_str()), 1;
  std::unique_ptr<twins::RestServer> server = std::move(started).value();
  {
    const long before = RssKib();
    auto probe = Serve(engine, threads, timeout_ms);
    with_many = probe.ok() ? RssKib() - before : -1;
  }
  const int port = server->port();

  std::atomic<bool> stop{false};
  std::vector<std::thread> attack;
  for (int i = 0; i < attackers; ++i) attack.emplace_back(Attack, port, i % 2 == 1, std::cref(stop));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let them connect first

  curl_global_init(CURL_GLOBAL_DEFAULT);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  const std::string doc = base + "/iot/v1/regions/fr-par/twins/dev1/documents/d";
  curl_slist* headers = curl_slist_append(nullptr, (std::string("X-Auth-Token: ") + kToken).c_str());
  std::vector<double> latencies_ms;
  int answered = 0;
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  while (Clock::now() < end) {
    CURL* curl = curl_easy_init();  // a new connection each call
    const bool health = latencies_ms.size() % 2 == 0;
    curl_easy_setopt(curl, CURLOPT_URL, health ? (base + "/healthz").c_str() : doc.c_str());
    if (!health) curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &Discard);
    const auto start = Clock::now();
    long status = 0;
    if (curl_easy_perform(curl) == CURLE_OK) curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    latencies_ms.push_back(ms);
    if (status == 200 && ms <= 1000) ++answered;
    curl_easy_cleanup(curl);
  }
  curl_slist_free_all(headers);
  stop = true;
  for (std::thread& t : attack) t.join();

  std::vector<double> sorted = latencies_ms;
  std::sort(sorted.begin(), sorted.end());
  auto at = [&](double q) { return sorted[std::min(sorted.size() - 1, static_cast<size_t>(q * sorted.size()))]; };
  std::printf("threads %d, request_timeout_ms %d, %d attackers (half idle, half 1 byte/s), %d s\n", threads, timeout_ms,
              attackers, seconds);
  std::printf("calls %zu, answered 200 within 1 s: %d (%.1f %%)\n", sorted.size(), answered,
              100.0 * answered / sorted.size());
  std::printf("latency ms: p50 %.2f  p99 %.2f  max %.1f\n", at(0.5), at(0.99), sorted.back());
  std::printf("RSS of a started server: %ld KiB with 4 threads, %ld KiB with %d (%.1f KiB per added thread)\n",
              with_four, with_many, threads, threads > 4 ? double(with_many - with_four) / (threads - 4) : 0.0);
  server.reset();
  std::system(("rm -rf " + dir).c_str());
  return 0;
}
