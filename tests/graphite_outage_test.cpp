// Graphite outages, one failure mode at a time, on the port of a real carbon-cache that then
// comes back: whatever the mode, one log line when the outage starts (with its cause) and one
// when it ends (with the samples dropped), however often the sender reconnects meanwhile.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tsdb/graphite.hpp"
#include "tests/support/carbon_server.hpp"
#include "tests/support/failing_peer.hpp"
#include "tests/support/samples.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using test::FailingPeer;
using Mode = test::FailingPeer::Mode;

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class LogLines {
 public:
  LogFn fn() {
    return [this](LogLevel, const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      text_ += line + "\n";
    };
  }
  std::string text() {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }
  size_t Count(const std::string& what) {
    const std::string all = text();
    size_t n = 0;
    for (size_t at = all.find(what); at != std::string::npos; at = all.find(what, at + 1)) ++n;
    return n;
  }

 private:
  std::mutex mutex_;
  std::string text_;
};

struct Case {
  Mode mode;
  const char* name;
  const char* cause;  // in the start line
};

class GraphiteOutageTest : public testing::TestWithParam<Case> {};

TEST_P(GraphiteOutageTest, OneLineWhenTheOutageStartsAndOneWhenItEnds) {
  test::TempDir dir;
  test::CarbonServer carbon(dir.sub("carbon"));
  LogLines log;
  GraphiteOptions options;
  options.url = carbon.url();
  options.min_backoff = 20ms;
  options.max_backoff = 200ms;
  options.io_timeout = 300ms;
  options.queue_capacity = 5000;
  options.log = log.fn();
  auto peer = std::make_unique<FailingPeer>(GetParam().mode, carbon.line_port());
  ASSERT_TRUE(peer->bound());
  auto created = GraphiteSender::Create(options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  std::unique_ptr<GraphiteSender> sender = std::move(created).value();

  // Enough for a peer that never reads to fill its buffers within an io_timeout.
  int64_t time = 1700000000;
  auto push = [&] {
    std::vector<Sample> samples;
    for (int i = 0; i < 200; ++i)
      samples.push_back(test::MakeSample("dev1", "outage", "v" + std::to_string(i), i, time));
    ++time;
    sender->Push(std::move(samples));
    std::this_thread::sleep_for(5ms);  // a steady producer, not a wait for an event
  };
  // Until the sender has failed (and reconnected) three times.
  const auto failing_until = Clock::now() + 20s;
  while (Clock::now() < failing_until && sender->counters().errors < 3) push();
  EXPECT_GE(sender->counters().errors, 3u);
  EXPECT_FALSE(sender->reachable());
  EXPECT_EQ(log.Count("queueing up to"), 1u) << log.text();
  EXPECT_EQ(log.Count(GetParam().cause), 1u) << log.text();
  EXPECT_EQ(log.Count("again after"), 0u) << log.text();

  peer.reset();
  std::string error;
  ASSERT_TRUE(carbon.Start(&error)) << error;
  const auto deadline = Clock::now() + 30s;
  while (Clock::now() < deadline && log.Count("again after") == 0) push();
  EXPECT_EQ(log.Count("queueing up to"), 1u) << log.text();
  EXPECT_EQ(log.Count("again after"), 1u) << log.text();
  EXPECT_NE(log.text().find("samples dropped meanwhile"), std::string::npos) << log.text();
  EXPECT_TRUE(sender->reachable());
}

INSTANTIATE_TEST_SUITE_P(Modes, GraphiteOutageTest,
                         testing::Values(Case{Mode::kRefused, "Refused", "Connection refused"},
                                         Case{Mode::kReset, "Reset", "Connection reset by peer"},
                                         Case{Mode::kTimeout, "Timeout", "Connection timed out"},
                                         Case{Mode::kNeverReads, "NeverReads", "timed out writing"}),
                         [](const testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace twins
