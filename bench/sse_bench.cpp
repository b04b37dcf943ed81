// What one event stream (GET .../twin-events) sustains, with the engine and RestServer in
// this process (no broker) and one client reading as fast as it can on a raw socket:
//
//   replay: `events` changes are written first, then one stream resumes from seq 0 and the
//           time until its last event arrives is measured (the stream's own pace: log reads,
//           formatting, writes to the socket).
//   live:   a writer puts as fast as it can, in groups of `group` writes per Sync (as the
//           broker's group commit makes them), while one stream follows; prints the writes/s
//           and the events/s the stream delivered, and whether it kept up (no overflow).
//
//   sse_bench [events=200000] [document_bytes=100] [group=64]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include "engine/engine.hpp"
#include "rest/rest_server.hpp"

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "bench-token";

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Occurrences of a marker in a byte stream read in chunks (one cut in two counts once).
class Marker {
 public:
  explicit Marker(std::string text) : text_(std::move(text)) {}
  uint64_t Count(std::string_view chunk) {
    carry_.append(chunk);
    uint64_t count = 0;
    for (size_t at = carry_.find(text_); at != std::string::npos; at = carry_.find(text_, at + text_.size())) ++count;
    // Less than one marker stays, so none is counted twice.
    carry_.erase(0, carry_.size() - std::min(carry_.size(), text_.size() - 1));
    return count;
  }

 private:
  const std::string text_;
  std::string carry_;
};

// A stream read on a raw socket; counts its change events (and sees an overflow).
class StreamReader {
 public:
  StreamReader(int port, const std::string& last_event_id) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      std::perror("connect");
      std::exit(1);
    }
    std::string request = std::string("GET /iot/v1/regions/fr-par/twin-events HTTP/1.1\r\nHost: bench\r\n") +
                          "X-Auth-Token: " + kToken + "\r\n";
    if (!last_event_id.empty()) request += "Last-Event-ID: " + last_event_id + "\r\n";
    request += "\r\n";
    (void)send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~StreamReader() { close(fd_); }
  StreamReader(const StreamReader&) = delete;
  StreamReader& operator=(const StreamReader&) = delete;

  // Reads until `events` change events came, the stream ended, or it overflowed.
  void ReadEvents(uint64_t events) {
    std::string buffer(1 << 20, '\0');
    while (count_ < events && !overflow_) {
      const ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
      if (n <= 0) return;
      bytes_ += static_cast<uint64_t>(n);
      const std::string_view chunk(buffer.data(), static_cast<size_t>(n));
      count_ += change_.Count(chunk);
      if (overflow_marker_.Count(chunk) > 0) overflow_ = true;
    }
  }

  uint64_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  bool overflow() const { return overflow_; }

 private:
  int fd_ = -1;
  Marker change_{"\nevent: change\n"};
  Marker overflow_marker_{"\nevent: overflow\n"};
  uint64_t count_ = 0;
  uint64_t bytes_ = 0;
  bool overflow_ = false;
};

std::string Data(size_t bytes, uint64_t i) {
  std::string data = "{\"i\":" + std::to_string(i) + ",\"pad\":\"";
  if (data.size() + 2 < bytes) data.append(bytes - data.size() - 2, 'x');
  return data + "\"}";
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const size_t document_bytes = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 100;
  const int group = argc > 3 ? std::atoi(argv[3]) : 64;

  char pattern[] = "/tmp/sse-bench-XXXXXX";
  const std::string dir = mkdtemp(pattern);
  twins::RocksDbOptions store_options;
  store_options.path = dir + "/db";
  store_options.changelog_bytes = uint64_t{1} << 30;  // every change of the run stays retained
  auto store = twins::OpenRocksDbStore(store_options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().message().c_str());
    return 1;
  }
  twins::Engine engine(std::move(store).value(), twins::Limits());
  twins::RestOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 2;
  options.tokens = {kToken};
  options.stream_max_lag = events + 1;  // the live run measures the pace, not the cut-off
  auto server = twins::RestServer::Start(options, engine, {});
  if (!server.ok()) {
    std::fprintf(stderr, "%s\n", server.status().message().c_str());
    return 1;
  }
  const int port = (*server)->port();

  // Writes `count` changes over 64 documents, `group` per Sync; returns the seconds taken.
  uint64_t written = 0;
  const auto write = [&](uint64_t count) {
    const auto start = Clock::now();
    for (uint64_t i = 0; i < count; ++i) {
      twins::WriteRequest request;
      request.data = Data(document_bytes, written);
      twins::WriteContext context;
      context.durability = twins::Durability::kAtSync;
      context.source = "mqtt";
      if (!engine.Put("bench", "doc" + std::to_string(written % 64), request, context).ok()) std::exit(1);
      ++written;
      if (written % static_cast<uint64_t>(group) == 0 && !engine.Sync().ok()) std::exit(1);
    }
    if (!engine.Sync().ok()) std::exit(1);
    return Seconds(Clock::now() - start);
  };

  const double write_seconds = write(events);
  {
    StreamReader reader(port, "0");
    const auto start = Clock::now();
    reader.ReadEvents(events);
    const double seconds = Seconds(Clock::now() - start);
    std::printf("replay: %llu events of ~%zu-byte documents in %.2f s: %.0f events/s, %.1f MB/s on the wire\n",
                static_cast<unsigned long long>(reader.count()), document_bytes, seconds, reader.count() / seconds,
                reader.bytes() / seconds / 1e6);
    std::printf("        (the writes that made them: %.0f puts/s, %d per sync)\n", events / write_seconds, group);
  }
  {
    StreamReader reader(port, "");
    std::thread follower([&] { reader.ReadEvents(events); });
    // The stream has taken its cursor once its head is out; a short wait is enough here.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto start = Clock::now();
    const double seconds = write(events);
    follower.join();
    const double total = Seconds(Clock::now() - start);
    std::printf("live:   writer %.0f puts/s; the stream delivered %llu events in %.2f s: %.0f events/s%s\n",
                events / seconds, static_cast<unsigned long long>(reader.count()), total, reader.count() / total,
                reader.overflow() ? " (overflow)" : "");
  }
  server->reset();
  std::filesystem::remove_all(dir);
  return 0;
}
