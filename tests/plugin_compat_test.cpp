// What must hold on every supported Mosquitto (Debian's 2.0.11, upstream 2.0.x, 2.1): the
// MQTT 5 Response Topic of a request, the start on an empty database, and how the plugin
// fits the broker's loop. scripts/compat.sh runs this file against each broker
// (TWINS_MOSQUITTO); plugin_test.cpp and the others hold the rest of the API.
#include <gtest/gtest.h>
#include <mqtt_protocol.h>

#include <memory>
#include <optional>
#include <string>

#include "tests/support/broker.hpp"
#include "tests/support/marker.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/raw_mqtt.hpp"

namespace twins::test {
namespace {

class CompatTest : public testing::Test {
 protected:
  void SetUp() override {
    broker_ = std::make_unique<Broker>();
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  void TearDown() override {
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  std::unique_ptr<MqttClient> Client(const std::string& id, int protocol = MQTT_PROTOCOL_V5) {
    auto client = std::make_unique<MqttClient>(id, broker_->port(), protocol);
    EXPECT_TRUE(client->connected());
    return client;
  }

  std::unique_ptr<Broker> broker_;
};

TEST_F(CompatTest, ResponseTopicGetsTheReplyWithItsCorrelationData) {
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("replies/dev1"));  // only its response topic
  ASSERT_TRUE(dev->Publish("$SCW/twins/me/state/put", R"({"data":{"on":true}})", 1, false, "req-1", "replies/dev1"));
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "replies/dev1");
  EXPECT_EQ(reply->payload, R"({"version":1,"data":{"on":true}})");
  EXPECT_EQ(reply->correlation_data, "req-1");
}

TEST_F(CompatTest, ResponseTopicGetsErrorRepliesToo) {
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("replies/dev1"));
  ASSERT_TRUE(dev->Publish("$SCW/twins/me/state/get", "", 1, false, "req-2", "replies/dev1"));
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "replies/dev1");
  EXPECT_EQ(reply->payload, R"({"error":"document not found"})");
  EXPECT_EQ(reply->correlation_data, "req-2");
}

TEST_F(CompatTest, WithoutResponseTopicTheReplyUsesTheResponseTopics) {
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/me/#"));
  auto reply = dev->Request("$SCW/twins/me/state/put", R"({"data":{}})");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/me/state/put/response/success");
}

// The device chooses the topic, but the reply is published to its connection only: a client
// subscribed to that very topic (or to everything) receives nothing.
TEST_F(CompatTest, ResponseTopicReplyReachesOnlyTheRequester) {
  auto spy = Client("spy");
  ASSERT_TRUE(spy->Subscribe("#"));
  ASSERT_TRUE(spy->Subscribe("$SCW/#"));
  ASSERT_TRUE(spy->Subscribe("replies/dev1"));
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Publish("$SCW/twins/me/state/put", R"({"data":{}})", 1, false, "c", "replies/dev1"));
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "replies/dev1");
  EXPECT_TRUE(OnlyMarkerArrives(*spy, *dev, "marker/compat"));
}

// Nothing under $SCW/twins/ is delivered to subscribers (access_guard.hpp), but a reply is
// published to the requester's connection, which no read check stops: a response topic there
// still gets its reply, and still only the requester.
TEST_F(CompatTest, ResponseTopicUnderTwinTopicsStillGetsTheReply) {
  auto spy = Client("spy");
  ASSERT_TRUE(spy->Subscribe("#"));
  ASSERT_TRUE(spy->Subscribe("$SCW/#"));
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/dev1/replies"));
  ASSERT_TRUE(dev->Publish("$SCW/twins/me/state/put", R"({"data":{}})", 1, false, "", "$SCW/twins/dev1/replies"));
  auto reply = dev->Next();
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/dev1/replies");
  EXPECT_EQ(reply->payload, R"({"version":1,"data":{}})");
  EXPECT_TRUE(OnlyMarkerArrives(*spy, *dev, "marker/compat"));
}

std::string Str(const std::string& s) {
  return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} + s;
}

// MQTT 5 CONNECT over `raw`, with a session kept 300 s unless `clean_start`; true on CONNACK.
bool ConnectV5(RawMqtt& raw, const std::string& client_id, bool clean_start) {
  const std::string properties = clean_start ? std::string(1, '\0') : std::string("\5\x11\0\0\x01\x2c", 6);
  raw.SendPacket(0x10, Str("MQTT") + "\5" + (clean_start ? "\2" : std::string(1, '\0')) + std::string("\0\x3c", 2) +
                           properties + Str(client_id));
  auto connack = raw.ReadType(2);
  return connack.has_value() && connack->body.size() >= 2 && connack->body[1] == 0;
}

// An MQTT 5 PUBLISH at QoS 1 on `topic` with the Response Topic given as raw bytes, which no
// client library would send when it is invalid.
std::string PublishWithResponseTopic(const std::string& topic, const std::string& response_topic) {
  auto str = Str;
  std::string properties = std::string(1, MQTT_PROP_RESPONSE_TOPIC) + str(response_topic);
  return str(topic) + std::string{0, 1} + std::string(1, static_cast<char>(properties.size())) + properties +
         R"({"data":{}})";
}

class InvalidResponseTopicTest : public CompatTest, public testing::WithParamInterface<std::string> {};

// Brokers refuse such a PUBLISH as a protocol error (the connection is closed), but before
// 2.0.20 a wildcard got through (2.0.11), and the plugin answers it with an error on the usual topic.
// Either way nothing is published on that topic and nothing is written.
TEST_P(InvalidResponseTopicTest, IsRefusedAndNothingIsWritten) {
  RawMqtt raw(broker_->port());
  ASSERT_TRUE(ConnectV5(raw, "dev1", true));
  raw.SendPacket(0x32, PublishWithResponseTopic("$SCW/twins/me/state/put", GetParam()));
  bool answered = false;
  while (auto packet = raw.Read()) {
    if (packet->type != 3) continue;
    EXPECT_EQ(packet->topic(), "$SCW/twins/me/state/put/response/error");
    const std::string refusal = R"({"error":"the Response Topic must be a topic name without wildcards, in UTF-8")";
    EXPECT_NE(packet->payload().find(refusal), std::string::npos) << packet->payload();
    answered = true;
    break;
  }
  // Either event ends the wait, not a timeout: the error reply, or the broker closing the connection.
  EXPECT_TRUE(answered || raw.closed_by_peer()) << "neither an answer nor a closed connection";
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/me/#"));
  auto reply = dev->Request("$SCW/twins/me/state/get", "");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->payload, R"({"error":"document not found"})");
}

std::string InvalidTopicName(const testing::TestParamInfo<std::string>& info) {
  const char* names[] = {"plus", "hash", "overlong_utf8", "nul"};
  return names[info.index];
}

INSTANTIATE_TEST_SUITE_P(Topics, InvalidResponseTopicTest,
                         testing::Values(std::string("replies/+"), std::string("replies/#"),
                                         std::string("replies/\xc0\xaf"), std::string("replies/\0x", 10)),
                         InvalidTopicName);

// A QoS 1 reply on a Response Topic outside $SCW/twins/, queued in the session of a connection
// that went, is not handed to the next connection with that client id (reply_owners.hpp).
// Mosquitto 2.0 holds replies to the tick and drops those of a gone connection; 2.1 publishes
// at once, so there the reply is queued and refused at the reconnect's access check.
TEST_F(CompatTest, ResponseTopicReplyQueuedForAGoneConnectionIsNotHandedToTheNextOne) {
  {
    RawMqtt first(broker_->port());
    ASSERT_TRUE(ConnectV5(first, "dev", false));
    broker_->Pause();  // the request and the lost connection are read in one loop pass
    first.SendPacket(0x32, PublishWithResponseTopic("$SCW/twins/me/state/put", "replies/dev"));
    first.Drop();
    broker_->Resume();
  }
  auto watcher = Client("watcher");
  RawMqtt second(broker_->port());
  ASSERT_TRUE(ConnectV5(second, "dev", false));
  // SUBSCRIBE (packet id 1, no properties) to marker/dev; queued messages come before SUBACK.
  second.SendPacket(0x82, std::string("\0\1\0", 3) + Str("marker/dev") + std::string(1, '\1'));
  std::optional<RawPacket> packet;
  while ((packet = second.Read()) && packet->type != 9) {
    EXPECT_NE(packet->type, 3) << "a queued message on " << packet->topic();
  }
  ASSERT_TRUE(packet.has_value()) << "no SUBACK";
  ASSERT_TRUE(watcher->Publish("marker/dev", "m"));
  auto next = second.ReadType(3);
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(next->topic(), "marker/dev");
}

// RocksDB reports the missing folder of a new database as an error; nothing of it reaches
// the broker log. Once a reply arrives, the start's deferred lines have been written.
TEST_F(CompatTest, FirstStartOnAnEmptyDatabaseLogsNoError) {
  auto dev = Client("dev1");
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/me/#"));
  ASSERT_TRUE(dev->Request("$SCW/twins/me/state/put", R"({"data":{}})").has_value());
  const std::string log = broker_->log();
  EXPECT_EQ(log.find("rocksdb:"), std::string::npos) << log;
  EXPECT_EQ(log.find("rror"), std::string::npos) << log;
}

// Mosquitto 2.1 ticks before network handling (2.0 after it): the plugin reads that from the
// broker's tick event, not from its version, and says which way it commits.
TEST_F(CompatTest, CommitModeFollowsWhereTheBrokerTicks) {
  ASSERT_TRUE(broker_->WaitForLog("twins: the broker ticks ")) << broker_->log();
  const bool tick_first = VersionAtLeast(BrokerVersion(broker_->log()), 2, 1, 0);
  EXPECT_EQ(broker_->log().find("twins: the broker ticks before network handling") != std::string::npos, tick_first)
      << broker_->log();
}

// Lines from the plugin's other threads are written at a tick. A 2.1 broker that idles wakes
// only for its own timers (seconds apart) unless a tick asks for sooner: the plugin asks for
// 100 ms (the default 2.1 build tested here wakes often enough without it). Here the Graphite
// sender's outage warning (nothing listens on its port) follows a device's last request on an
// otherwise idle broker.
TEST(CompatIdleTest, OtherThreadsLogLinesAreWrittenOnAnIdleBroker) {
  Broker broker("plugin_opt_graphite_url tcp://127.0.0.1:" + std::to_string(FreePort()) + "\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  MqttClient dev("dev1", broker.port());
  ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
  ASSERT_TRUE(
      dev.Request("$SCW/twins/me/_config/put", R"({"data":{"documents":{"d":{"_tsdb_trigger":"on-update"}}}})"));
  auto reply = dev.Request("$SCW/twins/me/d/put", R"({"data":{"n":1}})");
  ASSERT_TRUE(reply.has_value());
  ASSERT_EQ(reply->topic, "$SCW/twins/me/d/put/response/success") << reply->payload;
  EXPECT_TRUE(broker.WaitForLog("retrying with back-off", 2000)) << broker.log();
}

}  // namespace
}  // namespace twins::test
