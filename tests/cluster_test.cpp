// Several brokers sharing twins through PostgreSQL (plugin_opt_store): two real brokers with
// the built plugin, one real PostgreSQL 15, real MQTT and HTTP clients on both.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/json.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/loopback.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/postgres.hpp"
#include "tests/support/sse_client.hpp"

namespace twins::test {
namespace {

constexpr char kToken[] = "5d0f2c7e-8a41-4b9e-a3c6-1f2e3d4c5b6a";
using Clock = std::chrono::steady_clock;

long VersionOf(const std::string& json) {
  const size_t at = json.find("\"version\":");
  return at == std::string::npos ? -1 : std::stol(json.substr(at + 10));
}

// Writers that PATCH dev1/documents/log through REST on several brokers (writer w on
// rest_ports[w % size]), each patch adding one key of its own ("w<w>_<i>":1), until stopped:
// which writes were acknowledged (200), how many were refused with "retry later" (503).
class KeyWriters {
 public:
  KeyWriters(std::vector<int> rest_ports, int writers) {
    for (int w = 0; w < writers; ++w) {
      threads_.emplace_back([this, w, port = rest_ports[w % rest_ports.size()]] {
        HttpClient client;
        for (int i = 0; !stop_; ++i) {
          const std::string key = "w" + std::to_string(w) + "_" + std::to_string(i);
          HttpCall call;
          call.method = "PATCH";
          call.url = "http://127.0.0.1:" + std::to_string(port) + "/iot/v1/regions/fr-par/twins/dev1/documents/log";
          call.send_body = true;
          call.body = R"({"data":{")" + key + R"(":1}})";
          call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
          const HttpReply reply = client.Send(call);
          if (reply.status == 200) {
            std::lock_guard<std::mutex> lock(mutex_);
            acknowledged_.push_back(key);
          } else if (reply.status == 503) {
            ++refused_;
          } else {
            ADD_FAILURE() << reply.status << " " << reply.body;
            return;
          }
        }
      });
    }
  }
  ~KeyWriters() { Stop(); }
  KeyWriters(const KeyWriters&) = delete;
  KeyWriters& operator=(const KeyWriters&) = delete;

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  size_t acknowledged() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return acknowledged_.size();
  }
  int refused() const { return refused_; }
  // Until `count` more writes than `from` were acknowledged, 30 s at most.
  bool AwaitAcknowledged(size_t from, size_t count) const {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (acknowledged() < from + count && Clock::now() < deadline) std::this_thread::yield();
    return acknowledged() >= from + count;
  }
  bool AwaitRefused(int count) const {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (refused_ < count && Clock::now() < deadline) std::this_thread::yield();
    return refused_ >= count;
  }
  // After Stop(): every acknowledged key is in the final document `json`, and its version is
  // one more than its keys (contiguous: writes refused with an unknown outcome may be there too).
  void ExpectIn(const std::string& json) const {
    Json parsed(cJSON_Parse(json.c_str()));
    const long keys = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(parsed.get(), "data"));
    for (const std::string& key : acknowledged_) EXPECT_NE(json.find("\"" + key + "\":1"), std::string::npos) << key;
    EXPECT_EQ(VersionOf(json), 1 + keys) << json;
    EXPECT_GE(keys, static_cast<long>(acknowledged_.size()));
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> acknowledged_;
  std::vector<std::thread> threads_;
};

// One broker of the cluster: its MQTT port and its REST API.
struct Node {
  std::unique_ptr<Broker> broker;
  int rest_port = 0;
};

class ClusterTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedPostgres().ok()) << SharedPostgres().error();
    schema_ = "cluster_" + std::to_string(++schemas_) + "_" + std::to_string(getpid());
  }

  void TearDown() override {
    devices_.clear();
    for (Node& node : nodes_) {
      if (!node.broker) continue;
      node.broker->Stop();
      EXPECT_TRUE(node.broker->exited_cleanly()) << node.broker->log();
    }
  }

  std::string StoreOptions(const Postgres& server = SharedPostgres()) const {
    return "plugin_opt_store " + server.Uri() + "\nplugin_opt_store_schema " + schema_ + "\n";
  }

  // A broker of the cluster; its index in nodes_.
  size_t AddBroker(const std::string& extra = "", const Postgres& server = SharedPostgres()) {
    Node node;
    node.rest_port = FreePort();
    node.broker = std::make_unique<Broker>(
        StoreOptions(server) + "plugin_opt_rest_listen 127.0.0.1:" + std::to_string(node.rest_port) +
        "\nplugin_opt_rest_token " + kToken + "\nplugin_opt_max_requests_per_second 0\n" + extra);
    EXPECT_TRUE(node.broker->Start()) << node.broker->log();
    nodes_.push_back(std::move(node));
    return nodes_.size() - 1;
  }

  HttpReply Rest(size_t node, const std::string& method, const std::string& path, const std::string& body = "",
                 HttpClient* client = nullptr) {
    HttpCall call;
    call.method = method;
    call.url = "http://127.0.0.1:" + std::to_string(nodes_[node].rest_port) + "/iot/v1/regions/fr-par/twins/" + path;
    call.send_body = !body.empty();
    call.body = body;
    call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
    return (client != nullptr ? client : &http_)->Send(call);
  }

  int Health(size_t node) {
    HttpCall call;
    call.url = "http://127.0.0.1:" + std::to_string(nodes_[node].rest_port) + "/healthz";
    return http_.Send(call).status;
  }

  MqttClient& Device(const std::string& id, size_t node) {
    devices_.push_back(std::make_unique<MqttClient>(id, nodes_[node].broker->port()));
    EXPECT_TRUE(devices_.back()->connected());
    return *devices_.back();
  }

  static std::string Next(MqttClient& client, int timeout_ms = 5000) {
    auto message = client.Next(timeout_ms);
    return message ? message->topic + " " + message->payload : "(nothing)";
  }
  static std::string Ask(MqttClient& client, const std::string& topic, const std::string& payload) {
    EXPECT_TRUE(client.Publish(topic, payload, 1));
    return Next(client);
  }

  static inline int schemas_ = 0;
  std::string schema_;
  std::vector<Node> nodes_;
  std::vector<std::unique_ptr<MqttClient>> devices_;
  HttpClient http_;
};

TEST_F(ClusterTest, ADeviceOnOneBrokerAndRestOnTheOtherShareOneTwin) {
  const size_t a = AddBroker(), b = AddBroker();
  MqttClient& dev = Device("dev1", a);
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/state/put", R"({"data":{"temp":20}})"),
            R"($SCW/twins/me/state/put/response/success {"version":1,"data":{"temp":20}})");
  // Acknowledged on A, so read on B: reads see every acknowledged write, whichever broker.
  HttpReply read = Rest(b, "GET", "dev1/documents/state");
  EXPECT_EQ(read.status, 200);
  EXPECT_NE(read.body.find(R"("version":1)"), std::string::npos) << read.body;
  ASSERT_EQ(Rest(b, "PATCH", "dev1/documents/state", R"({"version":1,"data":{"mode":"eco"}})").status, 200);
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/state/get", ""),
            R"($SCW/twins/me/state/get/response/success {"version":2,"data":{"temp":20,"mode":"eco"}})");
  // A version the other broker has moved past is refused on both.
  EXPECT_EQ(Rest(b, "PUT", "dev1/documents/state", R"({"version":1,"data":{}})").status, 412);
  const std::string stale = Ask(dev, "$SCW/twins/me/state/put", R"({"version":1,"data":{}})");
  EXPECT_NE(stale.find("state/put/response/error"), std::string::npos) << stale;
  EXPECT_NE(stale.find(R"("actual_version":2)"), std::string::npos) << stale;
  // Bad input is answered as on one broker, and changes nothing.
  const std::string bad = Ask(dev, "$SCW/twins/me/state/patch", R"({"data":[1]})");
  EXPECT_NE(bad.find("response/error"), std::string::npos) << bad;
  EXPECT_EQ(Rest(a, "GET", "dev1/documents/state").body, Rest(b, "GET", "dev1/documents/state").body);
  EXPECT_EQ(VersionOf(Rest(a, "GET", "dev1/documents/state").body), 2);
  // Every request ran in a batch of the shared store; none failed.
  HttpCall metrics;
  metrics.url = "http://127.0.0.1:" + std::to_string(nodes_[a].rest_port) + "/metrics";
  metrics.headers = {std::string("X-Auth-Token: ") + kToken};
  const std::string text = http_.Send(metrics).body;
  auto value = [&](const std::string& name) {
    const size_t at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  EXPECT_GE(value("twins_store_batch_calls_total"), 6.0) << text;
  EXPECT_GE(value("twins_store_batches_total"), 1.0) << text;
  EXPECT_EQ(value("twins_store_batches_failed_total"), 0.0) << text;
  EXPECT_EQ(value("twins_store_batch_queued"), 0.0) << text;
}

// Versioned read-modify-write on both brokers at once, through REST and MQTT: every write
// that was acknowledged is in the document (no lost update) and versions are contiguous.
TEST_F(ClusterTest, VersionedWritersOnTwoBrokersLoseNoUpdate) {
  const size_t a = AddBroker(), b = AddBroker();
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/counter", R"({"data":{}})").status, 200);
  constexpr int kWriters = 4, kWrites = 15;
  std::atomic<int> acknowledged{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      HttpClient client;
      const size_t node = w % 2 == 0 ? a : b;
      for (int i = 0; i < kWrites;) {
        const long version = VersionOf(Rest(node, "GET", "dev1/documents/counter", "", &client).body);
        const std::string key = "w" + std::to_string(w) + "_" + std::to_string(i);
        const HttpReply reply = Rest(node, "PATCH", "dev1/documents/counter",
                                     R"({"version":)" + std::to_string(version) + R"(,"data":{")" + key + R"(":true}})",
                                     &client);
        if (reply.status == 200) {
          ++acknowledged;
          ++i;
        } else if (reply.status != 412) {
          ADD_FAILURE() << reply.status << " " << reply.body;
          return;
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  const std::string final = Rest(b, "GET", "dev1/documents/counter").body;
  EXPECT_EQ(acknowledged.load(), kWriters * kWrites);
  EXPECT_EQ(VersionOf(final), 1 + kWriters * kWrites) << final;
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kWrites; ++i) {
      const std::string key = "\"w" + std::to_string(w) + "_" + std::to_string(i) + "\":true";
      EXPECT_NE(final.find(key), std::string::npos) << key;
    }
  }
  // Every version, once, in the history either broker serves.
  for (int version = 1; version <= 1 + kWriters * kWrites; ++version) {
    EXPECT_EQ(Rest(version % 2 ? a : b, "GET", "dev1/documents/counter?version=" + std::to_string(version)).status, 200)
        << version;
  }
}

TEST_F(ClusterTest, TheDocumentQuotaIsExactAcrossBrokers) {
  const size_t a = AddBroker("plugin_opt_max_documents 4\n"), b = AddBroker("plugin_opt_max_documents 4\n");
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> creators;
  for (int c = 0; c < 4; ++c) {
    creators.emplace_back([&, c] {
      HttpClient client;
      for (int i = 0; i < 5; ++i) {
        const HttpReply reply = Rest(c % 2 == 0 ? a : b, "PUT",
                                     "dev1/documents/d" + std::to_string(c) + "_" + std::to_string(i), R"({"data":{}})",
                                     &client);
        if (reply.status == 200) {
          ++created;
        } else if (reply.status == 403 && reply.body.find("quotas_exceeded") != std::string::npos) {
          ++refused;
        } else {
          ADD_FAILURE() << reply.status << " " << reply.body;
        }
      }
    });
  }
  for (std::thread& creator : creators) creator.join();
  EXPECT_EQ(created.load(), 4);
  EXPECT_EQ(refused.load(), 16);
  const std::string list = Rest(b, "GET", "dev1").body;
  EXPECT_EQ(std::count(list.begin(), list.end(), ','), 3) << list;  // four names
}

TEST_F(ClusterTest, ARestWriteOnOneBrokerIsPushedToADeviceWatchingOnTheOther) {
  const size_t a = AddBroker(), b = AddBroker();
  MqttClient& dev = Device("dev1", b);
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/desired/watch", ""),
            R"($SCW/twins/me/desired/watch/response/success {"version":0,"data":{}})");
  const auto sent = Clock::now();
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/desired", R"({"data":{"target":21}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":1,"data":{"target":21}})");
  // Told by a notification, not by the one-second poll.
  EXPECT_LT(Clock::now() - sent, std::chrono::milliseconds(900));
  ASSERT_EQ(Rest(a, "DELETE", "dev1/documents/desired").status, 204);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/deleted {"version":1})");
  // Its own writes are not pushed back to it, and nothing reaches another device.
  MqttClient& other = Device("dev2", a);
  EXPECT_TRUE(other.Subscribe("$SCW/twins/#"));
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/desired/put", R"({"data":{"target":19}})"),
            R"($SCW/twins/me/desired/put/response/success {"version":1,"data":{"target":19}})");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/desired/get", ""),
            R"($SCW/twins/me/desired/get/response/success {"version":1,"data":{"target":19}})");
  EXPECT_EQ(Next(other, 300), "(nothing)");
}

// A watch is kept with the twin: a device that moves to the other broker without watching
// again still gets the pushes there.
TEST_F(ClusterTest, AWatchMadeOnOneBrokerServesTheDeviceOnTheOther) {
  const size_t a = AddBroker(), b = AddBroker();
  {
    MqttClient dev("dev1", nodes_[a].broker->port());
    EXPECT_EQ(Ask(dev, "$SCW/twins/me/desired/watch", ""),
              R"($SCW/twins/me/desired/watch/response/success {"version":0,"data":{}})");
  }
  MqttClient& moved = Device("dev1", b);
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/desired", R"({"data":{"target":22}})").status, 200);
  EXPECT_EQ(Next(moved), R"($SCW/twins/me/desired/updated {"version":1,"data":{"target":22}})");
  EXPECT_EQ(Ask(moved, "$SCW/twins/me/desired/unwatch", ""), R"($SCW/twins/me/desired/unwatch/response/success {})");
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/desired", R"({"data":{"target":23}})").status, 200);
  EXPECT_EQ(Next(moved, 1500), "(nothing)");
}

// Every broker's event stream carries every change, with one seq over the cluster.
TEST_F(ClusterTest, EveryBrokersStreamSeesEveryChangeInOneOrder) {
  const size_t a = AddBroker(), b = AddBroker();
  auto url = [&](size_t node) {
    return "http://127.0.0.1:" + std::to_string(nodes_[node].rest_port) + "/iot/v1/regions/fr-par/twin-events";
  };
  SseClient on_a(url(a), {std::string("X-Auth-Token: ") + kToken});
  SseClient on_b(url(b), {std::string("X-Auth-Token: ") + kToken});
  ASSERT_TRUE(on_a.WaitOpen());
  ASSERT_TRUE(on_b.WaitOpen());
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(Rest(i % 2 ? a : b, "PUT", "dev" + std::to_string(i % 3) + "/documents/d", R"({"data":{}})").status, 200);
  }
  const auto from_a = on_a.WaitEvents(6), from_b = on_b.WaitEvents(6);
  ASSERT_EQ(from_a.size(), 6u);
  ASSERT_EQ(from_b.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(from_a[i].id, from_b[i].id);
    EXPECT_EQ(from_a[i].data, from_b[i].data);
    if (i > 0) {
      EXPECT_EQ(std::stoull(from_a[i].id), std::stoull(from_a[i - 1].id) + 1);
    }
  }
}

// A client moving from broker A to broker B resumes with A's last seq, which B may not have
// heard of yet (B paused here while A wrote, resumed as the client connects): B waits to hear
// of it and goes on with the next change, instead of answering `reset`.
TEST_F(ClusterTest, AStreamResumedOnAnotherBrokerGoesOnFromItsLastSeq) {
  const size_t a = AddBroker(), b = AddBroker();
  auto url = [&](size_t node) {
    return "http://127.0.0.1:" + std::to_string(nodes_[node].rest_port) + "/iot/v1/regions/fr-par/twin-events";
  };
  SseClient on_a(url(a), {std::string("X-Auth-Token: ") + kToken});
  ASSERT_TRUE(on_a.WaitOpen());
  nodes_[b].broker->Pause();
  struct Resume {
    Broker* broker;
    ~Resume() { broker->Resume(); }
  } resume{nodes_[b].broker.get()};
  for (int i = 0; i < 3; ++i) ASSERT_EQ(Rest(a, "PUT", "dev1/documents/d", R"({"data":{}})").status, 200);
  const auto seen = on_a.WaitEvents(3);
  ASSERT_EQ(seen.size(), 3u);
  const uint64_t last = std::stoull(seen.back().id);
  nodes_[b].broker->Resume();
  SseClient on_b(url(b), {std::string("X-Auth-Token: ") + kToken, "Last-Event-ID: " + std::to_string(last)});
  ASSERT_TRUE(on_b.WaitOpen());
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/d", R"({"data":{"next":1}})").status, 200);
  const auto after = on_b.WaitEvents(1);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].event, "change") << after[0].data;
  EXPECT_EQ(after[0].id, std::to_string(last + 1));
  // Its bad-input twin: a seq no broker gave out yet is answered with `reset` (after the wait).
  SseClient ahead(url(b), {std::string("X-Auth-Token: ") + kToken, "Last-Event-ID: " + std::to_string(last + 100)});
  const auto reset = ahead.WaitEvents(1);
  ASSERT_EQ(reset.size(), 1u);
  EXPECT_EQ(reset[0].event, "reset");
}

TEST_F(ClusterTest, WithPostgresqlDownRequestsFailClearlyAndTheBrokerRecovers) {
  const size_t a = AddBroker("plugin_opt_store_timeout_ms 2000\n");
  MqttClient& dev = Device("dev1", a);
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/s/put", R"({"data":{"n":1}})"),
            R"($SCW/twins/me/s/put/response/success {"version":1,"data":{"n":1}})");
  ASSERT_TRUE(SharedPostgres().Stop());
  // Up again at the end whatever happens: the other tests of this binary share the server.
  struct Restart {
    ~Restart() { SharedPostgres().Start(); }
  } restart;
  const auto asked = Clock::now();
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/s/get", ""),
            R"($SCW/twins/me/s/get/response/error {"error":"the twin store is unavailable; retry later"})");
  EXPECT_LT(Clock::now() - asked, std::chrono::seconds(3));
  const HttpReply down = Rest(a, "PUT", "dev1/documents/s", R"({"data":{"n":2}})");
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(down.header("retry-after"), "1");
  EXPECT_NE(down.body.find("the twin store is unavailable"), std::string::npos) << down.body;
  EXPECT_EQ(Health(a), 503);
  // Other traffic goes on.
  MqttClient& listener = Device("listener", a);
  EXPECT_TRUE(listener.Subscribe("plain/topic"));
  EXPECT_TRUE(dev.Publish("plain/topic", "hello", 1));
  EXPECT_EQ(Next(listener), "plain/topic hello");
  ASSERT_TRUE(SharedPostgres().Start()) << SharedPostgres().error();
  // Back without a restart: within the reconnection back-off.
  std::string reply;
  const auto restarted = Clock::now();
  while (reply.find("success") == std::string::npos && Clock::now() - restarted < std::chrono::seconds(10)) {
    reply = Ask(dev, "$SCW/twins/me/s/patch", R"({"data":{"n":3}})");
  }
  EXPECT_EQ(reply, R"($SCW/twins/me/s/patch/response/success {"version":2,"data":{"n":3}})");
  EXPECT_EQ(Health(a), 200);
  EXPECT_TRUE(nodes_[a].broker->WaitForLog("PostgreSQL connection restored"));
  const std::string log = nodes_[a].broker->log();
  size_t outages = 0;
  for (size_t at = log.find("twin requests fail until it is back"); at != std::string::npos;
       at = log.find("twin requests fail until it is back", at + 1)) {
    ++outages;
  }
  EXPECT_EQ(outages, 1u) << log;
}

// Writers on both brokers while PostgreSQL stops and starts again: every acknowledged write is
// there afterwards, versions stay contiguous (each patch adds one key), and writing resumes
// without a restart.
TEST_F(ClusterTest, PostgresqlStoppedAndRestartedUnderLoadLosesNoAcknowledgedWrite) {
  const size_t a = AddBroker("plugin_opt_store_timeout_ms 2000\n"), b = AddBroker("plugin_opt_store_timeout_ms 2000\n");
  ASSERT_EQ(Rest(a, "PUT", "dev1/documents/log", R"({"data":{}})").status, 200);
  KeyWriters writers({nodes_[a].rest_port, nodes_[b].rest_port}, 4);
  EXPECT_TRUE(writers.AwaitAcknowledged(0, 20));
  ASSERT_TRUE(SharedPostgres().Stop());
  struct Restart {
    ~Restart() { SharedPostgres().Start(); }
  } restart;
  EXPECT_TRUE(writers.AwaitRefused(4));
  EXPECT_EQ(Health(b), 503);
  ASSERT_TRUE(SharedPostgres().Start()) << SharedPostgres().error();
  EXPECT_TRUE(writers.AwaitAcknowledged(writers.acknowledged(), 20));
  writers.Stop();
  writers.ExpectIn(Rest(a, "GET", "dev1/documents/log").body);
}

// The primary killed under load on two brokers, its synchronous standby promoted: the brokers
// go on with the new primary through their multi-host URI (no restart), no acknowledged write
// is lost, versions stay contiguous, and a push crosses brokers on the new primary.
TEST(ClusterFailoverTest, APromotedStandbyLosesNoAcknowledgedWriteAndBrokersGoOn) {
  ServerOptions synchronous;
  synchronous.synchronous_standby = true;
  Postgres primary(synchronous);
  ASSERT_TRUE(primary.ok()) << primary.error();
  ServerOptions of_primary;
  of_primary.standby_of = &primary;
  Postgres standby(of_primary);
  ASSERT_TRUE(standby.ok()) << standby.error();
  ASSERT_TRUE(primary.AwaitStandby()) << primary.error();
  const std::string uri = "postgresql://postgres@127.0.0.1:" + std::to_string(primary.port()) +
                          ",127.0.0.1:" + std::to_string(standby.port()) + "/postgres?target_session_attrs=read-write";
  std::vector<int> rest_ports;
  std::vector<std::unique_ptr<Broker>> brokers;
  for (int i = 0; i < 2; ++i) {
    rest_ports.push_back(FreePort());
    brokers.push_back(std::make_unique<Broker>(
        "plugin_opt_store " + uri +
        "\nplugin_opt_store_timeout_ms 2000\nplugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_ports.back()) +
        "\nplugin_opt_rest_token " + kToken + "\nplugin_opt_max_requests_per_second 0\n"));
    ASSERT_TRUE(brokers.back()->Start()) << brokers.back()->log();
  }
  auto rest = [&](int node, const std::string& method, const std::string& path, const std::string& body,
                  HttpClient& client) {
    HttpCall call;
    call.method = method;
    call.url = "http://127.0.0.1:" + std::to_string(rest_ports[node]) + "/iot/v1/regions/fr-par/twins/" + path;
    call.send_body = !body.empty();
    call.body = body;
    call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
    return client.Send(call);
  };
  HttpClient http;
  ASSERT_EQ(rest(0, "PUT", "dev1/documents/log", R"({"data":{}})", http).status, 200);
  KeyWriters writers(rest_ports, 4);
  EXPECT_TRUE(writers.AwaitAcknowledged(0, 40));
  primary.Kill();
  ASSERT_TRUE(standby.Promote()) << standby.error();
  EXPECT_TRUE(writers.AwaitAcknowledged(writers.acknowledged(), 40));
  writers.Stop();
  writers.ExpectIn(rest(1, "GET", "dev1/documents/log", "", http).body);

  // Pushes cross brokers on the new primary (the brokers LISTEN there now).
  MqttClient dev("dev1", brokers[1]->port());
  ASSERT_TRUE(dev.connected());
  ASSERT_TRUE(dev.Publish("$SCW/twins/me/desired/watch", "", 1));
  auto reply = dev.Next(5000);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->payload, R"({"version":0,"data":{}})");
  ASSERT_EQ(rest(0, "PUT", "dev1/documents/desired", R"({"data":{"after":"failover"}})", http).status, 200);
  auto push = dev.Next(5000);
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->topic + " " + push->payload,
            R"($SCW/twins/me/desired/updated {"version":1,"data":{"after":"failover"}})");
  for (auto& broker : brokers) {
    broker->Stop();
    EXPECT_TRUE(broker->exited_cleanly()) << broker->log();
  }
}

TEST_F(ClusterTest, ABadStoreOptionStopsTheBrokerWithAClearMessage) {
  Broker not_a_uri("plugin_opt_store host=127.0.0.1 dbname=twins\n");
  EXPECT_FALSE(not_a_uri.Start());
  EXPECT_NE(not_a_uri.log().find("plugin_opt_store: must be a postgresql:// URI"), std::string::npos)
      << not_a_uri.log();
  // One libpq cannot read never connects: not waited for (an unreachable server is, below).
  Broker malformed("plugin_opt_store postgresql://twins:secret@[::1/twins\n");
  EXPECT_FALSE(malformed.Start());
  EXPECT_NE(malformed.log().find("plugin_opt_store: cannot connect to PostgreSQL"), std::string::npos)
      << malformed.log();
  EXPECT_EQ(malformed.log().find("secret"), std::string::npos) << malformed.log();
  Broker bad_schema(StoreOptions() + "plugin_opt_store_schema Robert'); DROP TABLE x;--\n");
  EXPECT_FALSE(bad_schema.Start());
  EXPECT_NE(bad_schema.log().find("plugin_opt_store_schema"), std::string::npos) << bad_schema.log();
  Broker max_twins(StoreOptions() + "plugin_opt_max_twins 10\n");
  EXPECT_FALSE(max_twins.Start());
  EXPECT_NE(max_twins.log().find("plugin_opt_max_twins is not supported with plugin_opt_store"), std::string::npos)
      << max_twins.log();
}

// A broker started while PostgreSQL is down runs (non-twin traffic too), answers twin requests
// "unavailable" and /healthz 503, and opens the store once the server answers, without a
// restart: what was made before through another broker is there, the watches included.
TEST_F(ClusterTest, ABrokerStartedWhilePostgresIsDownOpensTheStoreOnceItAnswers) {
  Postgres server;
  ASSERT_TRUE(server.ok()) << server.error();
  const size_t before = AddBroker("", server);
  EXPECT_EQ(Ask(Device("dev1", before), "$SCW/twins/me/desired/watch", ""),
            R"($SCW/twins/me/desired/watch/response/success {"version":0,"data":{}})");
  nodes_[before].broker->Stop();
  ASSERT_TRUE(server.Stop());

  const size_t later = AddBroker("plugin_opt_store_timeout_ms 1000\n", server);
  Broker& broker = *nodes_[later].broker;
  EXPECT_TRUE(broker.WaitForLog("the broker runs, twin requests fail until PostgreSQL is reachable")) << broker.log();
  MqttClient& dev = Device("dev1", later);
  const std::string refused = Ask(dev, "$SCW/twins/me/state/get", "");
  EXPECT_EQ(refused.rfind("$SCW/twins/me/state/get/response/error ", 0), 0u) << refused;
  EXPECT_NE(refused.find("unavailable"), std::string::npos) << refused;
  EXPECT_EQ(Health(later), 503);
  MqttClient listener("listener", broker.port());
  ASSERT_TRUE(listener.Subscribe("plain/topic"));
  MqttClient talker("talker", broker.port());
  ASSERT_TRUE(talker.Publish("plain/topic", "hello", 1));
  auto heard = listener.Next(3000);
  EXPECT_TRUE(heard && heard->payload == "hello") << "non-twin traffic stopped while PostgreSQL is down";

  ASSERT_TRUE(server.Start()) << server.error();
  std::string put;
  for (auto deadline = Clock::now() + std::chrono::seconds(15); Clock::now() < deadline;) {
    put = Ask(dev, "$SCW/twins/me/state/put", R"({"data":{"n":1}})");
    if (put.find("/response/success") != std::string::npos) break;
  }
  EXPECT_EQ(put, R"($SCW/twins/me/state/put/response/success {"version":1,"data":{"n":1}})");
  EXPECT_EQ(Health(later), 200);
  EXPECT_TRUE(broker.WaitForLog("PostgreSQL reached: the twin store is open")) << broker.log();
  // The watch made through the first broker, read by the store's first batch.
  ASSERT_EQ(Rest(later, "PUT", "dev1/documents/desired", R"({"data":{"x":1}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":1,"data":{"x":1}})");
}

}  // namespace
}  // namespace twins::test
