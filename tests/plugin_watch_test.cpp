// Change propagation to devices (watch, unwatch, pushes) and the MQTT event feed, against the
// real broker with the built plugin, real MQTT clients and a real HTTP client for REST.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "tests/support/broker.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/marker.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/raw_mqtt.hpp"
#include "tests/support/small_disk.hpp"
#include "tests/support/sse_client.hpp"

namespace twins::test {
namespace {

constexpr char kToken[] = "0f6c0a52-3d0e-4a3b-9c53-7d1e2b4c5a69";

// A back-end that PUTs dev1/documents/d through REST without pause ({"n":1}, {"n":2}, ...)
// until it goes.
class BackendWriter {
 public:
  explicit BackendWriter(int rest_port)
      : thread_([this, rest_port] {
          HttpClient backend;
          for (int n = 1; !stop_; ++n) {
            HttpCall call;
            call.method = "PUT";
            call.url = "http://127.0.0.1:" + std::to_string(rest_port) +
                       "/iot/v1/regions/fr-par/twins/dev1/documents/d";
            call.send_body = true;
            call.body = R"({"data":{"n":)" + std::to_string(n) + "}}";
            call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
            const HttpReply reply = backend.Send(call);
            if (reply.status != 200) ADD_FAILURE() << "PUT: " << reply.status << " " << reply.body << reply.error;
          }
        }) {}
  ~BackendWriter() {
    stop_ = true;
    thread_.join();
  }
  BackendWriter(const BackendWriter&) = delete;
  BackendWriter& operator=(const BackendWriter&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

long VersionOf(const std::string& payload) { return std::stol(payload.substr(payload.find("\"version\":") + 10)); }

class WatchTest : public testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override {
    devices_.clear();
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
    disk_.reset();
  }

  // disk_mb: the database on a tmpfs of that size (disk_), when it can be mounted (root).
  void Start(const std::string& extra = "", int disk_mb = 0) {
    rest_port_ = FreePort();
    broker_ = std::make_unique<Broker>("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_port_) +
                                       "\nplugin_opt_rest_token " + kToken + "\nplugin_opt_max_documents 4\n" + extra);
    if (disk_mb > 0) {
      disk_ = std::make_unique<SmallDisk>(broker_->db_path(), disk_mb);
      if (!disk_->mounted()) return;
    }
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  HttpReply Rest(const std::string& method, const std::string& path, const std::string& body = "") {
    HttpCall call;
    call.method = method;
    call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + "/iot/v1/regions/fr-par/twins/" + path;
    call.send_body = !body.empty();
    call.body = body;
    call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
    return http_.Send(call);
  }

  MqttClient& Device(const std::string& id) {
    devices_.push_back(std::make_unique<MqttClient>(id, broker_->port()));
    EXPECT_TRUE(devices_.back()->connected());
    return *devices_.back();
  }

  // "topic payload" of the next message, or "(nothing)".
  static std::string Next(MqttClient& client) {
    auto message = client.Next(5000);
    return message ? message->topic + " " + message->payload : "(nothing)";
  }
  static std::string Ask(MqttClient& client, const std::string& topic, const std::string& payload, int qos = 1) {
    EXPECT_TRUE(client.Publish(topic, payload, qos));
    return Next(client);
  }

  // Nothing reached `client` before a marker: its own get of `doc`, answered after anything
  // the changes before it could have caused.
  // `outcome`: "success", or "error" for a document that does not exist.
  static void ExpectNothingBeforeMarker(MqttClient& client, const std::string& twin, const std::string& doc,
                                        const std::string& outcome = "success") {
    const std::string topic = "$SCW/twins/" + twin + "/" + doc + "/get";
    EXPECT_TRUE(OnlyMarkerArrives(
        client, [&] { return client.Publish(topic, "", 1); }, topic + "/response/" + outcome));
  }

  std::unique_ptr<SmallDisk> disk_;  // declared first: unmounted after the broker is gone
  std::unique_ptr<Broker> broker_;
  int rest_port_ = 0;
  HttpClient http_;
  std::vector<std::unique_ptr<MqttClient>> devices_;
};

TEST_F(WatchTest, WatchRepliesTheDocumentThenEveryRestChangeIsPushed) {
  MqttClient& dev = Device("dev1");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/desired/watch", ""),
            R"($SCW/twins/me/desired/watch/response/success {"version":0,"data":{}})");
  ASSERT_EQ(Rest("PUT", "dev1/documents/desired", R"({"data":{"target":21}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":1,"data":{"target":21}})");
  ASSERT_EQ(Rest("PATCH", "dev1/documents/desired", R"({"data":{"mode":"eco"}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":2,"data":{"target":21,"mode":"eco"}})");
  ASSERT_EQ(Rest("DELETE", "dev1/documents/desired").status, 204);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/deleted {"version":2})");
  // The watch outlives the document: its re-creation is pushed, and so is a delete-all.
  ASSERT_EQ(Rest("PUT", "dev1/documents/desired", R"({"data":{"back":true}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":1,"data":{"back":true}})");
  ASSERT_EQ(Rest("DELETE", "dev1").status, 204);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/deleted {"version":1})");
  ExpectNothingBeforeMarker(dev, "me", "desired", "error");
}

TEST_F(WatchTest, ConfigMayBeWatched) {
  MqttClient& dev = Device("dev1");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/_config/watch", ""),
            R"($SCW/twins/me/_config/watch/response/success {"version":0,"data":{}})");
  ASSERT_EQ(Rest("PUT", "dev1/documents/_config", R"({"data":{"documents":{}}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/_config/updated {"version":1,"data":{"documents":{}}})");
}

TEST_F(WatchTest, PushesUseTheTwinAsTheWatchSpelledItAndItsQos) {
  MqttClient& dev = Device("dev1");
  EXPECT_EQ(Ask(dev, "$SCW/twins/dev1/d/watch", "{}", 0),
            R"($SCW/twins/dev1/d/watch/response/success {"version":0,"data":{}})");
  ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"a":1}})").status, 200);
  auto push = dev.Next(5000);
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(push->topic, "$SCW/twins/dev1/d/updated");
  EXPECT_EQ(push->qos, 0);
  EXPECT_FALSE(push->retain);
}

TEST_F(WatchTest, TheDevicesOwnWritesAreNotPushedToIt) {
  MqttClient& dev = Device("dev1");
  Ask(dev, "$SCW/twins/me/d/watch", "");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/d/put", R"({"data":{"own":1}})"),
            R"($SCW/twins/me/d/put/response/success {"version":1,"data":{"own":1}})");
  // A REST change after it is the next thing the device hears: no push of its own write between.
  ASSERT_EQ(Rest("PATCH", "dev1/documents/d", R"({"data":{"rest":2}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/d/updated {"version":2,"data":{"own":1,"rest":2}})");
}

TEST_F(WatchTest, PushesReachNoOtherClientAndNoSubscriber) {
  MqttClient& dev = Device("dev1");
  Ask(dev, "$SCW/twins/me/d/watch", "");
  MqttClient& spy = Device("spy");
  ASSERT_TRUE(spy.Subscribe("#"));
  ASSERT_TRUE(spy.Subscribe("$SCW/#"));
  ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"a":1}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/d/updated {"version":1,"data":{"a":1}})");
  ExpectNothingBeforeMarker(spy, "me", "d", "error");
}

TEST_F(WatchTest, ADeviceCannotWatchAnotherTwin) {
  MqttClient& dev = Device("dev1");
  const std::string reply = Ask(dev, "$SCW/twins/dev2/d/watch", "");
  EXPECT_EQ(reply.rfind("$SCW/twins/dev2/d/watch/response/error ", 0), 0u) << reply;
  ASSERT_EQ(Rest("PUT", "dev2/documents/d", R"({"data":{"a":1}})").status, 200);
  ExpectNothingBeforeMarker(dev, "me", "d", "error");
}

TEST_F(WatchTest, BadWatchRequestsGetErrorsAndRegisterNothing) {
  MqttClient& dev = Device("dev1");
  for (const char* payload : {R"({"a":1})", "x", "[]", "{} {}"}) {
    const std::string reply = Ask(dev, "$SCW/twins/me/d/watch", payload);
    EXPECT_EQ(
        reply,
        R"($SCW/twins/me/d/watch/response/error {"error":"watch takes an empty payload or {}","argument":"payload"})")
        << payload;
  }
  EXPECT_EQ(
      Ask(dev, "$SCW/twins/me/d/unwatch", "nope"),
      R"($SCW/twins/me/d/unwatch/response/error {"error":"unwatch takes an empty payload or {}","argument":"payload"})");
  const std::string bad_name = Ask(dev, "$SCW/twins/me/b%20d/watch", "");
  EXPECT_NE(bad_name.find("/response/error "), std::string::npos) << bad_name;
  ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"a":1}})").status, 200);
  ExpectNothingBeforeMarker(dev, "me", "d");
}

TEST_F(WatchTest, WatchesPerTwinAreBoundedByMaxDocumentsPlusOne) {
  MqttClient& dev = Device("dev1");
  for (int i = 0; i < 5; ++i) {  // max_documents 4, plus one (_config)
    const std::string doc = "d" + std::to_string(i);
    EXPECT_EQ(Ask(dev, "$SCW/twins/me/" + doc + "/watch", ""),
              "$SCW/twins/me/" + doc + R"(/watch/response/success {"version":0,"data":{}})");
  }
  EXPECT_EQ(
      Ask(dev, "$SCW/twins/me/d9/watch", ""),
      R"($SCW/twins/me/d9/watch/response/error {"error":"quota exceeded: twin_watches is limited to 5","resource":"twin_watches","quota":5,"current":5})");
  // Watching again what is watched is no new watch; unwatching frees a place.
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/d0/watch", ""),
            R"($SCW/twins/me/d0/watch/response/success {"version":0,"data":{}})");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/d0/unwatch", ""), R"($SCW/twins/me/d0/unwatch/response/success {})");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/d0/unwatch", "{}"), R"($SCW/twins/me/d0/unwatch/response/success {})");
  EXPECT_EQ(Ask(dev, "$SCW/twins/me/d9/watch", ""),
            R"($SCW/twins/me/d9/watch/response/success {"version":0,"data":{}})");
  // An unwatched document is pushed no more.
  ASSERT_EQ(Rest("PUT", "dev1/documents/d0", R"({"data":{"a":1}})").status, 200);
  ExpectNothingBeforeMarker(dev, "me", "d0");
}

TEST_F(WatchTest, AWatchAfterAReconnectReturnsWhatChangedMeanwhile) {
  {
    MqttClient away("dev1", broker_->port());
    Ask(away, "$SCW/twins/me/desired/watch", "");
  }
  for (int n = 1; n <= 3; ++n) {
    ASSERT_EQ(Rest("PUT", "dev1/documents/desired", R"({"data":{"n":)" + std::to_string(n) + "}}").status, 200);
  }
  MqttClient& back = Device("dev1");
  ASSERT_TRUE(back.Publish("$SCW/twins/me/desired/watch", "", 1));
  // The push of the last change made while away may still be on its way to the client id (on
  // 2.1 it can reach the new connection): it is no older than the reply, which comes next.
  std::string reply = Next(back);
  if (reply == R"($SCW/twins/me/desired/updated {"version":3,"data":{"n":3}})") reply = Next(back);
  EXPECT_EQ(reply, R"($SCW/twins/me/desired/watch/response/success {"version":3,"data":{"n":3}})");
  ASSERT_EQ(Rest("PUT", "dev1/documents/desired", R"({"data":{"n":4}})").status, 200);
  EXPECT_EQ(Next(back), R"($SCW/twins/me/desired/updated {"version":4,"data":{"n":4}})");
}

TEST_F(WatchTest, WatchesSurviveABrokerRestart) {
  {
    MqttClient dev("dev1", broker_->port());
    Ask(dev, "$SCW/twins/me/desired/watch", "");
  }
  broker_->Stop();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  http_.Disconnect();
  MqttClient& dev = Device("dev1");  // connected again, without watching again
  ASSERT_EQ(Rest("PUT", "dev1/documents/desired", R"({"data":{"after":"restart"}})").status, 200);
  EXPECT_EQ(Next(dev), R"($SCW/twins/me/desired/updated {"version":1,"data":{"after":"restart"}})");
}

TEST_F(WatchTest, ManyQuickChangesArriveInVersionOrderEndingWithTheLatest) {
  MqttClient& dev = Device("dev1");
  Ask(dev, "$SCW/twins/me/d/watch", "");
  for (int n = 1; n <= 50; ++n) {
    ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"n":)" + std::to_string(n) + "}}").status, 200);
  }
  // Changes close together may be coalesced, never reordered, and the last is always pushed.
  int last = 0;
  while (last < 50) {
    auto push = dev.Next(5000);
    ASSERT_TRUE(push.has_value()) << "after version " << last;
    const size_t at = push->payload.find("\"version\":");
    const int version = std::stoi(push->payload.substr(at + 10));
    EXPECT_GT(version, last) << push->payload;
    last = version;
  }
  ExpectNothingBeforeMarker(dev, "me", "d");
}

// While a back-end writes without pause, a device watches again and again: each watch reply
// comes before any push of that watch, and every push after it is newer than the reply.
TEST_F(WatchTest, NoPushOvertakesTheWatchReplyOrAnOlderVersion) {
  broker_->Stop();
  Start("plugin_opt_max_requests_per_second 0\n");  // the writer never pauses
  ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"n":0}})").status, 200);
  BackendWriter writer(rest_port_);
  MqttClient& dev = Device("dev1");
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(dev.Publish("$SCW/twins/me/d/watch", "", 1));
    long seen = -1;
    for (int received = 0; received < 10; ++received) {
      auto message = dev.Next(5000);
      ASSERT_TRUE(message.has_value()) << "round " << round << ", message " << received << ", seen " << seen;
      if (seen < 0) {
        ASSERT_EQ(message->topic, "$SCW/twins/me/d/watch/response/success") << message->payload;
      } else {
        ASSERT_EQ(message->topic, "$SCW/twins/me/d/updated");
        EXPECT_GT(VersionOf(message->payload), seen) << message->payload;
      }
      seen = VersionOf(message->payload);
    }
    ASSERT_TRUE(dev.Publish("$SCW/twins/me/d/unwatch", "", 1));
    // Pushes already under way may still come; the unwatch reply closes the round.
    for (auto message = dev.Next(5000); message; message = dev.Next(5000)) {
      if (message->topic == "$SCW/twins/me/d/unwatch/response/success") break;
      ASSERT_EQ(message->topic, "$SCW/twins/me/d/updated");
      EXPECT_GT(VersionOf(message->payload), seen) << message->payload;
      seen = VersionOf(message->payload);
    }
  }
}

// While a back-end writes without pause, a watching device reads the document again and
// again: no push it gets afterwards is older than a version a reply already showed it.
TEST_F(WatchTest, NoPushIsOlderThanAVersionAGetReplyShowed) {
  broker_->Stop();
  Start("plugin_opt_max_requests_per_second 0\nplugin_opt_sync_writes true\n");
  ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"n":0}})").status, 200);
  BackendWriter writer(rest_port_);
  MqttClient& dev = Device("dev1");
  ASSERT_EQ(Ask(dev, "$SCW/twins/me/d/watch", "").rfind("$SCW/twins/me/d/watch/response/success", 0), 0u);
  long seen = 0;
  for (int round = 0; round < 300; ++round) {
    ASSERT_TRUE(dev.Publish("$SCW/twins/me/d/get", "", 0));
    for (auto message = dev.Next(5000);; message = dev.Next(5000)) {
      ASSERT_TRUE(message.has_value()) << "round " << round;
      const long version = VersionOf(message->payload);
      if (message->topic == "$SCW/twins/me/d/updated") {
        EXPECT_GE(version, seen) << "round " << round << ": a push older than what a reply showed";
      }
      seen = std::max(seen, version);
      if (message->topic == "$SCW/twins/me/d/get/response/success") break;
    }
  }
}

// The REST change stream of the real broker, resumed with Last-Event-ID after a restart: every
// change, MQTT and REST, exactly once and in order.
TEST_F(WatchTest, TheChangeStreamResumesAcrossABrokerRestartWithNoGapOrDuplicate) {
  const auto stream_url = [&] {
    return "http://127.0.0.1:" + std::to_string(rest_port_) + "/iot/v1/regions/fr-par/twin-events";
  };
  const std::vector<std::string> token = {std::string("X-Auth-Token: ") + kToken};
  MqttClient& dev = Device("dev1");
  std::vector<std::string> seen;
  {
    SseClient stream(stream_url(), token);
    ASSERT_TRUE(stream.WaitOpen());
    for (int n = 1; n <= 3; ++n) {
      ASSERT_EQ(Rest("PUT", "dev1/documents/d", R"({"data":{"n":)" + std::to_string(n) + "}}").status, 200);
    }
    Ask(dev, "$SCW/twins/me/d/patch", R"({"data":{"m":4}})");
    const std::vector<SseEvent> events = stream.WaitEvents(4);
    ASSERT_EQ(events.size(), 4u);
    for (const SseEvent& event : events) seen.push_back(event.id);
  }
  // Changes while the back-end is away, then a restart.
  ASSERT_EQ(Rest("PUT", "dev1/documents/e", R"({"data":{"away":1}})").status, 200);
  devices_.clear();
  broker_->Stop();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  http_.Disconnect();
  ASSERT_EQ(Rest("DELETE", "dev1/documents/d").status, 204);
  SseClient resumed(stream_url(), {token[0], "Last-Event-ID: " + seen.back()});
  const std::vector<SseEvent> events = resumed.WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "5");
  EXPECT_NE(events[0].data.find(R"("document_name":"e","operation":"put")"), std::string::npos) << events[0].data;
  EXPECT_EQ(events[1].id, "6");
  EXPECT_NE(events[1].data.find(R"("document_name":"d","operation":"delete","source":"rest","version":4})"),
            std::string::npos)
      << events[1].data;
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST_F(WatchTest, TheEventFeedCarriesEveryChangeToSubscribers) {
  broker_->Stop();
  Start("plugin_opt_events_topic backend/twin-events\n");
  MqttClient& backend = Device("backend");
  ASSERT_TRUE(backend.Subscribe("backend/twin-events/#"));
  ASSERT_EQ(Rest("PUT", "dev1/documents/state", R"({"data":{"t":20}})").status, 200);
  auto event = backend.Next(5000);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->topic, "backend/twin-events/dev1/state");
  EXPECT_EQ(event->qos, 1);
  EXPECT_FALSE(event->retain);
  EXPECT_NE(
      event->payload.find(
          R"("twin_id":"dev1","document_name":"state","operation":"put","source":"rest","version":1,"data":{"t":20}})"),
      std::string::npos)
      << event->payload;
  MqttClient& dev = Device("dev1");
  Ask(dev, "$SCW/twins/me/state/patch", R"({"data":{"t":21}})");
  event = backend.Next(5000);
  ASSERT_TRUE(event.has_value());
  EXPECT_NE(event->payload.find(R"("operation":"patch","source":"mqtt","version":2,"data":{"t":21}})"),
            std::string::npos)
      << event->payload;
  ASSERT_EQ(Rest("DELETE", "dev1/documents/state").status, 204);
  event = backend.Next(5000);
  ASSERT_TRUE(event.has_value());
  EXPECT_NE(event->payload.find(R"("operation":"delete","source":"rest","version":2})"), std::string::npos)
      << event->payload;
}

std::string NextPublish(RawMqtt& client) {
  auto packet = client.ReadType(3);
  return packet ? packet->topic() + " " + packet->payload() : "(nothing)";
}

// A watch or unwatch answered with an error takes no effect, also when its request was
// handled and only the log write after it failed (a real full disk): the device told its
// watch failed gets no pushes for it, the one told its unwatch failed still does. The log
// write fails for a patch of another twin in the same loop pass, which makes a large document.
TEST_F(WatchTest, AWatchOrUnwatchAnsweredWithAnErrorTakesNoEffect) {
  broker_->Stop();
  Start(
      "plugin_opt_cache_mb 1\nplugin_opt_min_free_mb 0\nplugin_opt_max_requests_per_second 0\n"
      "plugin_opt_max_document_bytes 1048576\n",
      4);
  if (!disk_->mounted()) {
    Start();  // for TearDown
    GTEST_SKIP() << "needs root to mount a tmpfs";
  }
  ASSERT_EQ(Rest("PUT", "big/documents/huge", R"({"data":{"s":")" + std::string(300 << 10, 'x') + R"("}})").status,
            200);
  // A restart flushes it to a table file and starts a new log (RocksDB's recovery at open), so
  // that no flush of it fails on the full disk: only the patch's log write below.
  broker_->Stop();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  ASSERT_TRUE(broker_->WaitForLog("twins: the broker ticks")) << broker_->log();
  const bool group_commit = broker_->log().find("writes of one loop pass share one log write") != std::string::npos;
  RawMqtt watcher(broker_->port()), unwatcher(broker_->port()), big(broker_->port());
  ASSERT_TRUE(watcher.Connect("dev1", true));
  ASSERT_TRUE(unwatcher.Connect("dev2", true));
  ASSERT_TRUE(big.Connect("big", true));
  for (RawMqtt* client : {&watcher, &unwatcher}) {
    client->Publish("$SCW/twins/me/kept/watch", "", 0);
    ASSERT_EQ(NextPublish(*client), R"($SCW/twins/me/kept/watch/response/success {"version":0,"data":{}})");
  }

  disk_->Fill();
  broker_->Pause();  // the three requests are read in one loop pass
  big.Publish("$SCW/twins/me/huge/patch", R"({"data":{"n":1}})", 0);
  watcher.Publish("$SCW/twins/me/lost/watch", "", 0);
  unwatcher.Publish("$SCW/twins/me/kept/unwatch", "", 0);
  broker_->Resume();
  EXPECT_EQ(NextPublish(big).rfind("$SCW/twins/me/huge/patch/response/error {", 0), 0u);
  const std::string watched = NextPublish(watcher);
  const std::string unwatched = NextPublish(unwatcher);
  const bool watch_failed = watched.rfind("$SCW/twins/me/lost/watch/response/error {", 0) == 0;
  const bool unwatch_failed = unwatched.rfind("$SCW/twins/me/kept/unwatch/response/error {", 0) == 0;
  // Where each write is durable before its reply (Mosquitto 2.1), a request handled before the
  // patch may succeed; the rule holds either way.
  if (group_commit) {
    EXPECT_TRUE(watch_failed) << watched;
    EXPECT_TRUE(unwatch_failed) << unwatched;
  }

  disk_->Free();
  HttpReply written;
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       (written = Rest("PUT", "dev1/documents/lost", R"({"data":{"n":1}})")).status != 200 &&
       std::chrono::steady_clock::now() < deadline;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the database resumes once it sees room
  }
  ASSERT_EQ(written.status, 200) << written.body;
  ASSERT_EQ(Rest("PUT", "dev1/documents/kept", R"({"data":{"n":2}})").status, 200);
  ASSERT_EQ(Rest("PUT", "dev2/documents/kept", R"({"data":{"n":3}})").status, 200);
  // Pushes leave in seq order: a push of `lost` would come before that of `kept`.
  EXPECT_EQ(NextPublish(watcher), watch_failed ? R"($SCW/twins/me/kept/updated {"version":1,"data":{"n":2}})"
                                               : R"($SCW/twins/me/lost/updated {"version":1,"data":{"n":1}})");
  if (unwatch_failed) {
    EXPECT_EQ(NextPublish(unwatcher), R"($SCW/twins/me/kept/updated {"version":1,"data":{"n":3}})");
  } else {
    unwatcher.Publish("$SCW/twins/me/kept/get", "", 0);
    EXPECT_EQ(NextPublish(unwatcher).rfind("$SCW/twins/me/kept/get/response/success ", 0), 0u);
  }
}

TEST_F(WatchTest, ABadEventsTopicStopsTheBrokerWithAClearMessage) {
  broker_->Stop();
  for (const char* topic : {"events/#", "events/+/x", "events/", "$SCW/twins/events"}) {
    Broker bad(std::string("plugin_opt_events_topic ") + topic + "\n");
    EXPECT_FALSE(bad.Start()) << topic;
    EXPECT_NE(bad.log().find("plugin_opt_events_topic"), std::string::npos) << bad.log();
  }
  Start();
}

}  // namespace
}  // namespace twins::test
