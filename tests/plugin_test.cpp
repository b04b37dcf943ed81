// The in-band MQTT API against the real broker with the built plugin.
#include <gtest/gtest.h>
#include <mqtt_protocol.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/broker.hpp"
#include "tests/support/marker.hpp"
#include "tests/support/mqtt_client.hpp"

namespace twins::test {
namespace {

class PluginTest : public testing::Test {
 protected:
  void SetUp() override { StartBroker(); }

  void TearDown() override {
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  void StartBroker(const std::string& options = "") {
    if (broker_) broker_->Stop();
    broker_ = std::make_unique<Broker>(options);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  // A device subscribed to its own twin's topics, the documented flow.
  std::unique_ptr<MqttClient> Device(const std::string& id, int protocol = MQTT_PROTOCOL_V311) {
    auto client = std::make_unique<MqttClient>(id, broker_->port(), protocol);
    EXPECT_TRUE(client->connected());
    EXPECT_TRUE(client->Subscribe("$SCW/twins/me/#"));
    EXPECT_TRUE(client->Subscribe("$SCW/twins/" + id + "/#"));
    return client;
  }

  // Topic and payload of the reply to one request, as "topic payload".
  static std::string Ask(MqttClient& client, const std::string& topic, const std::string& payload, int qos = 1) {
    auto reply = client.Request(topic, payload, qos);
    return reply ? reply->topic + " " + reply->payload : "<no reply>";
  }

  std::unique_ptr<Broker> broker_;
};

TEST_F(PluginTest, EveryMethodRepliesWithTheExactDocument) {
  auto dev = Device("dev1");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/desired/put", R"({"data":{"temp":20,"mode":"eco"}})"),
            R"($SCW/twins/me/desired/put/response/success {"version":1,"data":{"temp":20,"mode":"eco"}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/desired/patch", R"({"version":1,"data":{"temp":21.5,"mode":null}})"),
            R"($SCW/twins/me/desired/patch/response/success {"version":2,"data":{"temp":21.5}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/desired/get", ""),
            R"($SCW/twins/me/desired/get/response/success {"version":2,"data":{"temp":21.5}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/desired/delete", ""),
            R"($SCW/twins/me/desired/delete/response/success {"version":2,"data":{"temp":21.5}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/desired/get", ""),
            R"($SCW/twins/me/desired/get/response/error {"error":"document not found"})");
}

TEST_F(PluginTest, ExplicitTwinIdWorksAndRepliesUseTheSpellingOfTheRequest) {
  auto dev = Device("dev1");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/dev1/state/put", R"({"data":{"a":1}})"),
            R"($SCW/twins/dev1/state/put/response/success {"version":1,"data":{"a":1}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/state/get", ""),
            R"($SCW/twins/me/state/get/response/success {"version":1,"data":{"a":1}})");
}

TEST_F(PluginTest, VersionConflictNamesExpectedAndActualVersions) {
  auto dev = Device("dev1");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":1}})");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":2}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/put", R"({"version":1,"data":{"a":3}})"),
            R"($SCW/twins/me/d/put/response/error {"error":"document version mismatch","twin_id":"dev1",)"
            R"("document_name":"d","expected_version":1,"actual_version":2})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":2,"data":{"a":2}})");
}

TEST_F(PluginTest, VersionMatchWrites) {
  auto dev = Device("dev1");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":1}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/patch", R"({"version":1,"data":{"b":2}})"),
            R"($SCW/twins/me/d/patch/response/success {"version":2,"data":{"a":1,"b":2}})");
}

struct QosCase {
  int protocol;
  int qos;
};

class PluginQosTest : public PluginTest, public testing::WithParamInterface<QosCase> {};

TEST_P(PluginQosTest, ReplyComesAtTheRequestQosAndIsNotRetained) {
  auto dev = Device("dev-q", GetParam().protocol);
  auto reply = dev->Request("$SCW/twins/me/d/put", R"({"data":{"q":1}})", GetParam().qos);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/me/d/put/response/success");
  EXPECT_EQ(reply->payload, R"({"version":1,"data":{"q":1}})");
  EXPECT_EQ(reply->qos, GetParam().qos);
  EXPECT_FALSE(reply->retain);
  auto error = dev->Request("$SCW/twins/me/d/put", "not json", GetParam().qos);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->topic, "$SCW/twins/me/d/put/response/error");
  EXPECT_EQ(error->qos, GetParam().qos);
}

INSTANTIATE_TEST_SUITE_P(ProtocolsAndQos, PluginQosTest,
                         testing::Values(QosCase{MQTT_PROTOCOL_V311, 0}, QosCase{MQTT_PROTOCOL_V311, 1},
                                         QosCase{MQTT_PROTOCOL_V311, 2}, QosCase{MQTT_PROTOCOL_V5, 0},
                                         QosCase{MQTT_PROTOCOL_V5, 1}, QosCase{MQTT_PROTOCOL_V5, 2}),
                         [](const auto& info) {
                           return std::string(info.param.protocol == MQTT_PROTOCOL_V5 ? "v5" : "v311") + "_qos" +
                                  std::to_string(info.param.qos);
                         });

TEST_F(PluginTest, Mqtt5PublisherSeesNotAuthorizedPubackYetGetsTheReply) {
  auto dev = Device("dev5", MQTT_PROTOCOL_V5);
  auto reply = dev->Request("$SCW/twins/me/d/put", R"({"data":{}})", 1);
  EXPECT_EQ(dev->last_puback_reason(), MQTT_RC_NOT_AUTHORIZED);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/me/d/put/response/success");
}

TEST_F(PluginTest, Mqtt5CorrelationDataIsEchoed) {
  auto dev = Device("dev5", MQTT_PROTOCOL_V5);
  ASSERT_TRUE(dev->Publish("$SCW/twins/me/d/get", "", 1, false, "req-42"));
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->correlation_data, "req-42");
}

TEST_F(PluginTest, OtherClientsReceiveNeitherRequestsNorReplies) {
  MqttClient spy("spy", broker_->port());
  ASSERT_TRUE(spy.Subscribe("$SCW/#"));
  ASSERT_TRUE(spy.Subscribe("$SCW/twins/dev1/#"));
  ASSERT_TRUE(spy.Subscribe("$SCW/twins/me/#"));
  ASSERT_TRUE(spy.Subscribe("#"));
  auto dev = Device("dev1");
  EXPECT_NE(Ask(*dev, "$SCW/twins/dev1/d/put", R"({"data":{"secret":1}})"), "<no reply>");
  EXPECT_NE(Ask(*dev, "$SCW/twins/me/d/get", ""), "<no reply>");
  EXPECT_NE(Ask(*dev, "$SCW/twins/me/d/put", "bad"), "<no reply>");
  // The replies came before their copies could reach spy; the requests precede dev's marker.
  EXPECT_TRUE(OnlyMarkerArrives(spy, *dev, "marker/spy"));
}

TEST_F(PluginTest, RetainedRequestIsRefusedWithAnErrorAndNotStored) {
  auto dev = Device("dev1");
  dev->Publish("$SCW/twins/me/d/put", R"({"data":{}})", 1, true);
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(
      reply->topic + " " + reply->payload,
      R"j($SCW/twins/me/d/put/response/error {"error":"requests must not be retained (retain flag set)","argument":"retain"})j");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/error {"error":"document not found"})");
  // A later subscriber gets the retained marker, published after, and nothing before it.
  ASSERT_TRUE(dev->Publish("marker/retained", "m", 1, true));
  MqttClient late("late", broker_->port());
  ASSERT_TRUE(late.Subscribe("$SCW/#"));
  ASSERT_TRUE(late.Subscribe("marker/#"));
  auto first = late.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->topic, "marker/retained");
}

TEST_F(PluginTest, DeviceCannotReadWriteOrDeleteAnotherTwin) {
  auto a = Device("devA");
  auto b = Device("devB");
  Ask(*a, "$SCW/twins/me/d/put", R"({"data":{"owner":"A"}})");
  const std::string denied =
      R"j({"error":"a device may only use its own twin (its client id, or 'me')","argument":"twin_id"})j";
  for (const char* method : {"get", "put", "patch", "delete"}) {
    std::string topic = std::string("$SCW/twins/devA/d/") + method;
    EXPECT_EQ(Ask(*b, topic, R"({"data":{"owner":"B"}})"), topic + "/response/error " + denied);
  }
  EXPECT_EQ(Ask(*a, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":1,"data":{"owner":"A"}})");
}

TEST_F(PluginTest, BadInputGetsAnErrorReplyKeepsTheConnectionAndWritesNothing) {
  StartBroker("plugin_opt_max_depth 3\nplugin_opt_max_document_bytes 100\n");
  auto dev = Device("dev1");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"ok":true}})");
  struct Case {
    std::string topic;
    std::string payload;
    std::string error;
  } cases[] = {
      {"d/put", "", R"({"error":"empty payload, a JSON object is expected","argument":"data"})"},
      {"d/put", "{not json", R"({"error":"invalid JSON near byte 1","argument":"data"})"},
      {"d/patch", R"({"data":[1]})", R"({"error":"data must be a JSON object","argument":"data"})"},
      {"d/put", R"({"version":1})", R"({"error":"data is required","argument":"data"})"},
      {"d/put", R"({"version":"1","data":{}})",
       R"({"error":"version must be an integer from 0 to 2^53","argument":"version"})"},
      {"d/patch", R"({"data":{"a":[1,null]}})",
       R"({"error":"data.a[1]: arrays cannot contain null","argument":"data"})"},
      {"d/put", R"({"data":{"_hidden":1}})",
       R"({"error":"data._hidden: keys starting with '_' are reserved","argument":"data"})"},
      {"d/put", R"({"data":{"a":{"b":{"c":{"d":1}}}}})",
       R"({"error":"data nests deeper than 3 levels","argument":"data"})"},
      {"d/put", R"({"data":{"s":")" + std::string(120, 'x') + R"("}})",
       R"({"error":"document of 128 bytes is larger than the limit of 100","argument":"data"})"},
      {"d/put", std::string(5000, ' '),
       R"({"error":"request of 5000 bytes is larger than the limit of 4296","argument":"data"})"},
      {"bad~name!/put", R"({"data":{}})",
       R"({"error":"document name may only contain [-_.~0-9a-zA-Z]","argument":"document_name"})"},
      {"_secret/get", "",
       R"j({"error":"document names starting with '_' are reserved (only _config exists)","argument":"document_name"})j"},
      {"_config/put", R"({"data":{"documents":{"d":{"_tsdb_trigger":"never"}}}})",
       R"({"error":"data.documents.d._tsdb_trigger: must be \"on-update\" or \"on-change\"","argument":"data"})"},
      {"d/frobnicate", "",
       R"j({"error":"unknown method 'frobnicate' (known: get, put, patch, delete, watch, unwatch)","argument":"method"})j"},
      {"d/put", "{\"data\":{\"a\":\"\xff\"}}", R"({"error":"payload is not valid UTF-8 JSON text","argument":"data"})"},
  };
  for (const Case& c : cases) {
    const std::string topic = "$SCW/twins/me/" + c.topic;
    EXPECT_EQ(Ask(*dev, topic, c.payload), topic + "/response/error " + c.error);
  }
  EXPECT_TRUE(dev->connected());
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":1,"data":{"ok":true}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/_config/get", ""),
            R"($SCW/twins/me/_config/get/response/error {"error":"document not found"})");
}

TEST_F(PluginTest, PublishesOnResponseTopicsOrWrongDepthAreDroppedSilently) {
  MqttClient spy("spy", broker_->port());
  ASSERT_TRUE(spy.Subscribe("$SCW/#"));
  ASSERT_TRUE(spy.Subscribe("marker/#"));
  auto dev = Device("dev1");
  for (const char* topic : {"$SCW/twins/me/d/get/response/success", "$SCW/twins/me/get", "$SCW/twins/me",
                            "$SCW/twins/dev1/d/put/response/error"}) {
    ASSERT_TRUE(dev->Publish(topic, R"({"data":{}})", 1));
  }
  // A put after them: its reply comes after any reply they would have had.
  const std::string marker = "$SCW/twins/me/marker/put";
  EXPECT_TRUE(OnlyMarkerArrives(
      *dev, [&] { return dev->Publish(marker, R"({"data":{}})", 1); }, marker + "/response/success"));
  EXPECT_TRUE(OnlyMarkerArrives(spy, *dev, "marker/spy"));
  EXPECT_TRUE(dev->connected());
}

TEST_F(PluginTest, DataSurvivesBrokerRestart) {
  {
    auto dev = Device("dev1");
    Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"kept":1}})");
  }
  broker_->Stop();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  auto dev = Device("dev1");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":1,"data":{"kept":1}})");
}

TEST_F(PluginTest, SighupReloadKeepsTwinsWorking) {
  auto dev = Device("dev1");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":1}})");
  broker_->Reload();
  for (int i = 0; i < 100 && broker_->log().find("twins: configuration reloaded") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(broker_->log().find("twins: configuration reloaded"), std::string::npos) << broker_->log();
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/patch", R"({"data":{"b":2}})"),
            R"($SCW/twins/me/d/patch/response/success {"version":2,"data":{"a":1,"b":2}})");
}

TEST_F(PluginTest, CleanShutdownClosesTheDatabase) {
  auto dev = Device("dev1");
  Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":1}})");
  broker_->Stop();
  EXPECT_NE(broker_->log().find("twins: stopped, database closed"), std::string::npos) << broker_->log();
  // The database opens again without recovery work left behind: a fresh broker reads it.
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  auto again = Device("dev1");
  EXPECT_EQ(Ask(*again, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":1,"data":{"a":1}})");
}

TEST_F(PluginTest, AcknowledgedWritesSurviveBrokerKill) {
  {
    auto dev = Device("dev1");
    for (int i = 1; i <= 20; ++i) Ask(*dev, "$SCW/twins/me/d/patch", R"({"data":{"n":)" + std::to_string(i) + "}}");
  }
  broker_->Kill();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  auto dev = Device("dev1");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":20,"data":{"n":20}})");
}

// Many devices' writes answered together (one loop pass, one batch, one log write): every
// write answered before a kill -9 is there after the restart.
TEST_F(PluginTest, AcknowledgedBatchedWritesOfManyDevicesSurviveBrokerKill) {
  constexpr int kDevices = 8;
  constexpr int kRounds = 25;
  std::vector<std::unique_ptr<MqttClient>> devices;
  for (int d = 0; d < kDevices; ++d) devices.push_back(Device("dev" + std::to_string(d)));
  for (int round = 1; round <= kRounds; ++round) {
    for (auto& dev : devices) {
      ASSERT_TRUE(dev->Publish("$SCW/twins/me/d/patch", R"({"data":{"n":)" + std::to_string(round) + "}}", 0));
    }
    for (auto& dev : devices) {
      auto reply = dev->Next();
      ASSERT_TRUE(reply.has_value());
      ASSERT_EQ(reply->topic, "$SCW/twins/me/d/patch/response/success") << reply->payload;
    }
  }
  broker_->Kill();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  for (int d = 0; d < kDevices; ++d) {
    auto dev = Device("dev" + std::to_string(d));
    EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
              "$SCW/twins/me/d/get/response/success {\"version\":" + std::to_string(kRounds) +
                  ",\"data\":{\"n\":" + std::to_string(kRounds) + "}}");
  }
}

TEST_F(PluginTest, OrdinaryTrafficIsUntouched) {
  MqttClient sub("sub", broker_->port());
  ASSERT_TRUE(sub.Subscribe("sensors/#"));
  ASSERT_TRUE(sub.Subscribe("$SCW/other/#"));
  MqttClient pub("pub", broker_->port());
  ASSERT_TRUE(pub.Publish("sensors/t", "21.5", 1));
  ASSERT_TRUE(pub.Publish("$SCW/other/x", "y", 1));
  auto a = sub.Next();
  auto b = sub.Next();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->topic + " " + a->payload, "sensors/t 21.5");
  EXPECT_EQ(b->topic + " " + b->payload, "$SCW/other/x y");
  ASSERT_TRUE(pub.Publish("sensors/retained", "r", 1, true));
  MqttClient late("late", broker_->port());
  ASSERT_TRUE(late.Subscribe("sensors/retained"));
  auto retained = late.Next();
  ASSERT_TRUE(retained.has_value());
  EXPECT_TRUE(retained->retain);
}

TEST_F(PluginTest, PluginLogsVersionAndOptionsAtStart) {
  EXPECT_NE(broker_->log().find("twins: mosquitto-twins " TWINS_VERSION ", database " + broker_->db_path()),
            std::string::npos)
      << broker_->log();
}

// The plugin's line at the broker's first tick.
constexpr char kFirstTick[] = "twins: the broker ticks ";

// Under per_listener_settings Mosquitto before 2.0.15 sends plugins no tick: twins still
// answer, and the log says what is lost. Later brokers tick there too: no warning.
TEST(PluginOptionsTest, PerListenerSettingsWarnsOnlyWhereTheBrokerSendsNoTick) {
  Broker broker("", "per_listener_settings true\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  const bool ticks = VersionAtLeast(BrokerVersion(broker.log()), 2, 0, 15);
  const std::string warning = "twins: the broker sends no tick events (per_listener_settings true?)";
  MqttClient dev("dev1", broker.port());
  ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
  if (ticks) {
    ASSERT_TRUE(broker.WaitForLog(kFirstTick)) << broker.log();
  }
  // Without ticks the warning comes with the first request after the plugin's 2 s of grace:
  // ask until it does (or, with ticks, once).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    auto reply = dev.Request("$SCW/twins/me/d/put", R"({"data":{}})");
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->topic, "$SCW/twins/me/d/put/response/success");
  } while (!ticks && !broker.WaitForLog(warning, 250) && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(broker.log().find(warning) == std::string::npos, ticks) << broker.log();
}

TEST(PluginOptionsTest, GlobalPluginGetsNoTickWarning) {
  Broker broker;
  ASSERT_TRUE(broker.Start()) << broker.log();
  // Once a tick came, no request warns, however long after the start.
  ASSERT_TRUE(broker.WaitForLog(kFirstTick)) << broker.log();
  MqttClient dev("dev1", broker.port());
  ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
  ASSERT_TRUE(dev.Request("$SCW/twins/me/d/put", R"({"data":{}})").has_value());
  EXPECT_EQ(broker.log().find("no tick events"), std::string::npos) << broker.log();
}

TEST(PluginOptionsTest, BadOptionValueStopsTheBrokerNamingTheOption) {
  Broker broker("plugin_opt_max_depth deep\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("plugin_opt_max_depth: 'deep' is not a whole number"), std::string::npos) << broker.log();
}

TEST(PluginOptionsTest, UnknownOptionStopsTheBrokerNamingTheOption) {
  Broker broker("plugin_opt_db_pth /tmp/x\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("plugin_opt_db_pth: unknown option"), std::string::npos) << broker.log();
}

TEST(PluginOptionsTest, UnopenableDatabaseStopsTheBroker) {
  Broker broker("plugin_opt_db_path /proc/no-twins-here\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("cannot open database at /proc/no-twins-here"), std::string::npos) << broker.log();
}

}  // namespace
}  // namespace twins::test
