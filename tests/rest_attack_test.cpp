// The REST API and the Graphite push of the real broker under attack, each attack
// as an attacker on 127.0.0.1 would make it: connections that send nothing or trickle their
// headers, token guessing, a database that refuses writes, a carbon receiver that never reads.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/broker.hpp"
#include "tests/support/carbon_server.hpp"
#include "tests/support/failing_peer.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/small_disk.hpp"

namespace twins::test {
namespace {

using Clock = std::chrono::steady_clock;
constexpr char kToken[] = "0b7c5a8e-6f1d-4e2a-9c3b-8d4f2a1e7b6c";

// Waits up to `ms` for the server to close `fd` (or send anything); true if it did.
bool ClosedBy(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, ms) != 0;
}

// Attackers holding connections: `idle` ones send nothing, `trickling` ones send a request
// head one byte a second and never finish it. Each reconnects as soon as the server closes it.
class SlowClients {
 public:
  SlowClients(int port, int idle, int trickling) {
    for (int i = 0; i < idle + trickling; ++i) {
      const bool trickle = i >= idle;
      threads_.emplace_back([this, port, trickle] { Run(port, trickle); });
    }
  }
  ~SlowClients() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }
  int connected() const { return connected_; }
  int reconnections() const { return reconnections_; }

 private:
  void Run(int port, bool trickle) {
    const std::string head = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + std::string(4096, 'a');
    bool first = true;
    while (!stop_) {
      int fd = ConnectLoopback(port);
      if (fd < 0) continue;
      if (first) ++connected_;
      if (!first) ++reconnections_;
      first = false;
      size_t sent = 0;
      while (!stop_) {
        if (ClosedBy(fd, trickle ? 1000 : 100)) break;
        if (trickle && send(fd, head.data() + sent++ % head.size(), 1, MSG_NOSIGNAL) != 1) break;
      }
      close(fd);
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> connected_{0};
  std::atomic<int> reconnections_{0};
  std::vector<std::thread> threads_;
};

class RestAttackTest : public testing::Test {
 protected:
  void TearDown() override {
    if (!broker_) return;
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  void StartBroker(const std::string& extra = "") {
    rest_port_ = FreePort();
    broker_ = std::make_unique<Broker>("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_port_) +
                                       "\nplugin_opt_rest_token " + kToken + "\n" + extra);
  }

  HttpCall Call(const std::string& method, const std::string& path, std::vector<std::string> headers = {},
                const std::string& body = "") const {
    HttpCall call;
    call.method = method;
    call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + path;
    call.headers = std::move(headers);
    call.send_body = !body.empty();
    call.body = body;
    if (!body.empty()) call.headers.push_back("Content-Type: application/json");
    return call;
  }
  HttpCall Authenticated(const std::string& method, const std::string& path, const std::string& body = "") const {
    return Call(method, path, {std::string("X-Auth-Token: ") + kToken}, body);
  }

  std::unique_ptr<Broker> broker_;
  int rest_port_ = 0;
};

// With the defaults, 32 connections that send nothing or trickle their headers (reopened
// when closed) leave REST answering: >= 99 % of legitimate calls within 1 s.
TEST_F(RestAttackTest, SlowAndIdleConnectionsDoNotDenyRest) {
  StartBroker();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  HttpClient client;
  ASSERT_EQ(
      client.Send(Authenticated("PUT", "/iot/v1/regions/fr-par/twins/dev1/documents/d", R"({"data":{"a":1}})")).status,
      200);
  client.Disconnect();

  SlowClients attackers(rest_port_, 16, 16);
  const auto ready = Clock::now() + std::chrono::seconds(10);
  while (attackers.connected() < 32 && Clock::now() < ready) std::this_thread::yield();
  ASSERT_EQ(attackers.connected(), 32);

  // Past the 10 s request timeout, so that attackers are closed and come back meanwhile.
  const auto end = Clock::now() + std::chrono::seconds(12);
  int calls = 0, fast = 0;
  std::string failures;
  while (Clock::now() < end) {
    // A new connection each time, as a client that was not connected when the attack began.
    client.Disconnect();
    HttpCall call = calls % 2 == 0 ? Call("GET", "/healthz")
                                   : Authenticated("GET", "/iot/v1/regions/fr-par/twins/dev1/documents/d");
    call.timeout_ms = 15000;
    const auto start = Clock::now();
    HttpReply reply = client.Send(call);
    const auto took = Clock::now() - start;
    ++calls;
    if (reply.status == 200 && took <= std::chrono::seconds(1)) {
      ++fast;
    } else if (failures.size() < 2000) {
      failures += std::to_string(reply.status) + " after " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) + " ms " +
                  reply.error + "\n";
    }
  }
  EXPECT_GE(attackers.reconnections(), 32);  // every attacker was timed out and came back
  EXPECT_GE(calls, 50);
  EXPECT_GE(fast * 100, calls * 99) << fast << " of " << calls << " answered within 1 s\n" << failures;
}

// Guesses from one address are answered 401 a few times, then refused (429) without
// being checked, and logged with the address; a client on another address is never slowed,
// and may send its token as a bearer token.
TEST_F(RestAttackTest, TokenGuessingIsRefusedAndLoggedWhileOthersAreServed) {
  StartBroker();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  std::atomic<bool> guessing{true};
  int checked = 0, refused = 0, other = 0;
  std::thread guesser([&] {
    HttpClient client;
    for (int i = 0; i < 300; ++i) {
      HttpCall guess = Call("GET", "/iot/v1/regions/fr-par/twins/dev1", {"X-Auth-Token: guess-" + std::to_string(i)});
      guess.source_address = "127.0.0.2";
      const long status = client.Send(guess).status;
      (status == 401 ? checked : status == 429 ? refused : other)++;
    }
    guessing = false;
  });
  HttpClient client;
  int served = 0, calls = 0;
  while (guessing || calls < 20) {
    ++calls;
    served += client
                  .Send(Call("GET", "/iot/v1/regions/fr-par/twins/dev1",
                             {std::string("Authorization: Bearer ") + kToken}))
                  .status == 200;
  }
  guesser.join();
  EXPECT_EQ(served, calls);
  EXPECT_EQ(other, 0);
  EXPECT_LE(checked, 14);  // 10 free failures, then one every 1, 2, 4 … s
  EXPECT_GE(refused, 286);
  EXPECT_TRUE(broker_->WaitForLog("REST: authentication failed from 127.0.0.2 (invalid X-Auth-Token): 1 failure"))
      << broker_->log();
  EXPECT_TRUE(broker_->WaitForLog("11 failures from it, 11 in all; its requests are refused for 1 s"))
      << broker_->log();
}

// While the database refuses writes (its disk is full), /healthz answers 503 with the
// reason; once space is back it answers 200 again, with no restart.
TEST_F(RestAttackTest, HealthzIsUnavailableWhileTheDatabaseRefusesWrites) {
  StartBroker("plugin_opt_cache_mb 1\nplugin_opt_min_free_mb 0\n");
  SmallDisk disk(broker_->db_path(), 2);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  HttpClient client;
  HttpReply health = client.Send(Call("GET", "/healthz"));
  ASSERT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.body, R"({"status":"ok","graphite":"off"})");

  disk.Fill();
  const std::string filler(16 * 1024, 'x');
  long status = 200;
  for (int i = 0; i < 200 && status == 200; ++i) {
    status = client
                 .Send(Authenticated("PUT", "/iot/v1/regions/fr-par/twins/dev1/documents/big",
                                     R"({"data":{"s":")" + filler + R"("}})"))
                 .status;
  }
  ASSERT_EQ(status, 507) << "the disk never filled";
  health = client.Send(Call("GET", "/healthz"));
  EXPECT_EQ(health.status, 503) << health.body;
  EXPECT_NE(health.body.find(R"("status":"writes_refused","reason":"the database's disk is full)"), std::string::npos)
      << health.body;

  disk.Free();
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline && (health = client.Send(Call("GET", "/healthz"))).status != 200) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the store retries every 250 ms
  }
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(
      client.Send(Authenticated("PUT", "/iot/v1/regions/fr-par/twins/dev1/documents/small", R"({"data":{}})")).status,
      200);
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A carbon receiver that accepts and never reads gives one line when the outage starts
// and one when it ends (a real carbon-cache on the port), not a pair every 5 s.
TEST_F(RestAttackTest, NeverReadingCarbonIsOneOutageWithOneStartAndOneEndLine) {
  TempDir dir;
  CarbonServer carbon(dir.sub("carbon"));
  auto peer = std::make_unique<FailingPeer>(FailingPeer::Mode::kNeverReads, carbon.line_port());
  ASSERT_TRUE(peer->bound());
  StartBroker("plugin_opt_graphite_url " + carbon.url() + "\nplugin_opt_max_requests_per_second 0\n");
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  HttpClient client;
  const std::string doc = "/iot/v1/regions/fr-par/twins/dev1/documents/";
  ASSERT_EQ(
      client
          .Send(Authenticated("PUT", doc + "_config", R"({"data":{"documents":{"m":{"_tsdb_trigger":"on-update"}}}})"))
          .status,
      200);
  std::string numbers = "{\"data\":{";
  for (int i = 0; i < 200; ++i) numbers += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  numbers += "}}";
  auto push = [&] { return client.Send(Authenticated("PUT", doc + "m", numbers)).status; };

  // Over two io_timeouts (5 s) of continuous pushing: the old sender logged a start and an end each.
  const auto attack_end = Clock::now() + std::chrono::seconds(12);
  while (Clock::now() < attack_end) ASSERT_EQ(push(), 200);
  const std::string during = broker_->log();
  EXPECT_EQ(Count(during, "queueing up to"), 1u) << during;
  EXPECT_EQ(Count(during, "again after"), 0u) << during;

  peer.reset();
  std::string error;
  ASSERT_TRUE(carbon.Start(&error)) << error;
  const auto deadline = Clock::now() + std::chrono::seconds(40);
  while (Clock::now() < deadline && broker_->log().find("again after") == std::string::npos) {
    ASSERT_EQ(push(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a rate carbon-cache keeps up with
  }
  const std::string after = broker_->log();
  EXPECT_EQ(Count(after, "queueing up to"), 1u) << after;
  EXPECT_EQ(Count(after, "again after"), 1u) << after;
  EXPECT_NE(after.find("samples dropped meanwhile"), std::string::npos) << after;
}

}  // namespace
}  // namespace twins::test
