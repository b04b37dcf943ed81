// One device must not be able to hurt another: forged replies, identity, re-sent QoS 2
// requests, request floods and unread replies, against the real broker with the plugin.
// "Nothing arrives" is always proved by a marker sent after, arriving first.
#include <gtest/gtest.h>
#include <mqtt_protocol.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/broker.hpp"
#include "tests/support/broker_test.hpp"
#include "tests/support/marker.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/raw_mqtt.hpp"

namespace twins::test {
namespace {

// The broker's access control beside the plugin: none, the README's acl_file, or
// dynamic-security with a role for anonymous devices (listed after the plugin).
struct AccessSetup {
  std::string name;
  std::string acl;  // acl_file contents, empty for none
  bool dynsec = false;
};

void PrintTo(const AccessSetup& setup, std::ostream* out) { *out << setup.name; }

const std::string kReadmeAcl =
    "topic readwrite marker/#\n"
    "topic readwrite allowed/#\n"
    "topic read secret/#\n"
    "pattern readwrite $SCW/twins/%c/#\n"
    "pattern readwrite $SCW/twins/me/#\n";

const std::string kDynsecConfig = R"({
  "defaultACLAccess": {"publishClientSend": false, "publishClientReceive": true, "subscribe": false, "unsubscribe": true},
  "clients": [],
  "groups": [{"groupname": "devices", "roles": [{"rolename": "device"}], "clients": []}],
  "anonymousGroup": "devices",
  "roles": [{"rolename": "device", "acls": [
    {"acltype": "publishClientSend", "topic": "$SCW/twins/%c/#", "allow": true},
    {"acltype": "publishClientSend", "topic": "$SCW/twins/me/#", "allow": true},
    {"acltype": "publishClientSend", "topic": "marker/#", "allow": true},
    {"acltype": "publishClientSend", "topic": "allowed/#", "allow": true},
    {"acltype": "publishClientReceive", "topic": "other/#", "allow": false},
    {"acltype": "subscribePattern", "topic": "#", "allow": true},
    {"acltype": "subscribePattern", "topic": "$SCW/#", "allow": true},
    {"acltype": "subscribePattern", "topic": "$SCW/twins/#", "allow": true}
  ]}]
})";

class SecurityTest : public testing::TestWithParam<AccessSetup> {
 protected:
  void TearDown() override {
    if (!broker_) return;
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  // `with_plugin` false: the same access setup in a broker without mosquitto_twins.
  void StartBroker(bool with_plugin = true, const std::string& plugin_options = "") {
    const AccessSetup& setup = GetParam();
    files_ = std::make_unique<TempDir>();
    std::string global, after_plugin = plugin_options;
    if (!setup.acl.empty()) {
      std::ofstream(files_->sub("acl")) << setup.acl;
      global += "acl_file " + files_->sub("acl") + "\n";
    }
    if (setup.dynsec) {
      std::ofstream(files_->sub("dynsec.json")) << kDynsecConfig;
      std::string lines = "plugin " + BrokerPlugin("mosquitto_dynamic_security.so") + "\nplugin_opt_config_file " +
                          files_->sub("dynsec.json") + "\n";
      (with_plugin ? after_plugin : global) += lines;
    }
    broker_ = std::make_unique<Broker>(after_plugin, global);
    if (!with_plugin) broker_->WithoutPlugin();
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  // A client subscribed to everything a device might (its twin topics, all of $SCW) and to
  // the markers.
  std::unique_ptr<MqttClient> Listener(const std::string& id) {
    auto client = std::make_unique<MqttClient>(id, broker_->port());
    EXPECT_TRUE(client->connected());
    for (const char* pattern : {"$SCW/twins/me/#", "$SCW/#", "marker/#"}) EXPECT_TRUE(client->Subscribe(pattern));
    EXPECT_TRUE(client->Subscribe("$SCW/twins/" + id + "/#"));
    return client;
  }

  // True when `client` receives `marker/<name>`, published now by a new client, before anything else.
  testing::AssertionResult OnlyMarkerArrivesAt(MqttClient& client, const std::string& name) {
    MqttClient sender("marker-" + name, broker_->port());
    return OnlyMarkerArrives(client, sender, "marker/" + name);
  }

  // A client with `will` that loses its connection; returns once the broker has dealt with
  // the Will (a new connection with the same client id is accepted only after that).
  void LoseConnectionWithWill(const std::string& id, const Will& will) {
    {
      RawMqtt attacker(broker_->port());
      ASSERT_TRUE(attacker.Connect(id, true, will));
      attacker.Drop();
    }
    MqttClient same_id(id, broker_->port());
    ASSERT_TRUE(same_id.connected());
  }

  std::unique_ptr<TempDir> files_;
  std::unique_ptr<Broker> broker_;
};

const std::string kForged = R"({"version":99,"data":{"forged":true}})";

TEST_P(SecurityTest, WillsUnderTwinTopicsReachNoSubscriber) {
  StartBroker();
  auto victim = Listener("victim");
  LoseConnectionWithWill("mallory1", {"$SCW/twins/me/desired/get/response/success", kForged, 1, false});
  LoseConnectionWithWill("mallory2", {"$SCW/twins/victim/desired/get/response/success", kForged, 0, false});
  LoseConnectionWithWill("mallory3", {"$SCW/twins/me/desired/get", kForged, 1, false});
  EXPECT_TRUE(OnlyMarkerArrivesAt(*victim, "wills"));
}

TEST_P(SecurityTest, RetainedWillsAndPublishesUnderTwinTopicsAreNeverStored) {
  StartBroker();
  LoseConnectionWithWill("mallory1", {"$SCW/twins/me/desired/get/response/success", kForged, 1, true});
  LoseConnectionWithWill("mallory2", {"$SCW/twins/me/desired/get", kForged, 1, true});
  {
    MqttClient mallory("mallory3", broker_->port());
    mallory.Publish("$SCW/twins/me/desired/get/response/success", kForged, 1, true);
    mallory.Publish("$SCW/twins", kForged, 1, true);
    ASSERT_TRUE(mallory.Publish("marker/retained", "m", 1, true));
  }
  // Retained messages are sent on SUBSCRIBE, in subscription order: anything stored under
  // $SCW would come before the marker.
  MqttClient late("late", broker_->port());
  ASSERT_TRUE(late.Subscribe("$SCW/#"));
  ASSERT_TRUE(late.Subscribe("marker/#"));
  auto first = late.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->topic, "marker/retained");
}

TEST_P(SecurityTest, PublishedRepliesAreForgedForNobodyAndRealRepliesStillCome) {
  StartBroker();
  auto victim = Listener("victim");
  {
    MqttClient mallory("mallory", broker_->port());
    mallory.Publish("$SCW/twins/me/desired/get/response/success", kForged, 1);
    mallory.Publish("$SCW/twins/victim/desired/get/response/success", kForged, 0);
    mallory.Publish("$SCW/twins/victim/desired/updated", kForged, 1);
  }
  EXPECT_TRUE(OnlyMarkerArrivesAt(*victim, "published"));
  auto reply = victim->Request("$SCW/twins/me/desired/put", R"({"data":{"real":true}})", 1);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic + " " + reply->payload,
            R"($SCW/twins/me/desired/put/response/success {"version":1,"data":{"real":true}})");
}

// Non-twin traffic: what each client receives, with and without the plugin, must be the same.
std::vector<std::string> NonTwinDeliveries(int port) {
  MqttClient reader("reader", port);
  for (const char* pattern : {"allowed/#", "secret/#", "other/#", "marker/#"}) reader.Subscribe(pattern);
  {
    MqttClient writer("writer", port);
    for (const char* topic : {"allowed/a", "secret/s", "other/o", "$SCW/other/x"}) writer.Publish(topic, "x", 1);
    writer.Publish("marker/end", "m", 1);
  }
  std::vector<std::string> seen;
  while (auto message = reader.Next()) {
    seen.push_back(message->topic);
    if (message->topic == "marker/end") break;
  }
  return seen;
}

TEST_P(SecurityTest, OtherTrafficIsDecidedExactlyAsWithoutThePlugin) {
  StartBroker(false);
  const std::vector<std::string> without = NonTwinDeliveries(broker_->port());
  broker_->Stop();
  ASSERT_TRUE(broker_->exited_cleanly()) << broker_->log();
  StartBroker(true);
  const std::vector<std::string> with = NonTwinDeliveries(broker_->port());
  EXPECT_EQ(with, without);
  ASSERT_FALSE(without.empty());
  EXPECT_EQ(without.back(), "marker/end");  // the scenario ran to its end in both brokers
}

INSTANTIATE_TEST_SUITE_P(AccessSetups, SecurityTest,
                         testing::Values(AccessSetup{"NoAcl", "", false}, AccessSetup{"AclFile", kReadmeAcl, false},
                                         AccessSetup{"DynamicSecurity", "", true}),
                         [](const auto& info) { return info.param.name; });

// The remaining tests need no access setup.
class PluginSafetyTest : public BrokerTest {
 protected:
  void StartBroker(const std::string& options = "", const std::string& global = "") {
    broker_ = std::make_unique<Broker>(options, global);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  // A password file (mosquitto_passwd) for users alice (pw-a) and bob (pw-b); empty if it failed.
  static std::string AlicesAndBobsPasswordFile(const TempDir& dir) {
    const std::string file = dir.sub("passwords");
    const std::string make = "mosquitto_passwd -b -c " + file + " alice pw-a >/dev/null && mosquitto_passwd -b " +
                             file + " bob pw-b >/dev/null";
    return std::system(make.c_str()) == 0 ? file : std::string();
  }
  // The next PUBLISH a raw client receives, as "topic payload".
  static std::string NextPublish(RawMqtt& client) {
    auto packet = client.ReadType(3);
    return packet ? packet->topic() + " " + packet->payload() : "<no reply>";
  }
};

TEST_F(PluginSafetyTest, ReSentQos2RequestChangesTheTwinOnceAndGetsOneReply) {
  StartBroker();
  const std::string topic = "$SCW/twins/me/d/patch";
  RawMqtt dev(broker_->port());
  ASSERT_TRUE(dev.Connect("q2dev", false));
  dev.Publish(topic, R"({"data":{"n":1}})", 2, 7);
  ASSERT_TRUE(dev.ReadType(5).has_value());  // PUBREC
  EXPECT_EQ(NextPublish(dev), topic + R"(/response/success {"version":1,"data":{"n":1}})");
  dev.PubRel(7);
  ASSERT_TRUE(dev.ReadType(7).has_value());  // PUBCOMP
  // The next request's PUBREC is lost with the connection; the client re-sends it (DUP, same
  // packet id) once reconnected to its session, as MQTT asks.
  dev.Publish(topic, R"({"data":{"n":2}})", 2, 9);
  ASSERT_TRUE(dev.ReadType(5).has_value());
  dev.Drop();
  RawMqtt again(broker_->port());
  ASSERT_TRUE(again.Connect("q2dev", false));
  again.Publish(topic, R"({"data":{"n":2}})", 2, 9, true);
  ASSERT_TRUE(again.ReadType(5).has_value());
  again.PubRel(9);
  EXPECT_EQ(NextPublish(again), topic + R"(/response/success {"version":2,"data":{"n":2}})");
  // One reply for the re-send, and the next reply is the get's: the patch ran once.
  again.Publish("$SCW/twins/me/d/get", "", 0);
  EXPECT_EQ(NextPublish(again), R"($SCW/twins/me/d/get/response/success {"version":2,"data":{"n":2}})");
}

TEST_F(PluginSafetyTest, AReSentQos2RequestWithCorrelationDataIsAnsweredWhateverChangedSince) {
  StartBroker();
  {
    MqttClient dev("q2v5", broker_->port(), MQTT_PROTOCOL_V5);
    ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
    ASSERT_TRUE(dev.Publish("$SCW/twins/me/d/put", R"({"data":{"a":1}})", 2, false, "req-1"));
    auto reply = dev.Next();
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->payload, R"({"version":1,"data":{"a":1}})");
    ASSERT_TRUE(dev.Publish("$SCW/twins/me/other/put", R"({"data":{}})", 1));  // no QoS 2 write: remembered
    ASSERT_TRUE(dev.Next().has_value());                                       // stays req-1
  }
  MqttClient again("q2v5", broker_->port(), MQTT_PROTOCOL_V5);
  ASSERT_TRUE(again.Subscribe("$SCW/twins/me/#"));
  ASSERT_TRUE(again.Publish("$SCW/twins/me/d/put", R"({"data":{"a":1}})", 2, false, "req-1"));
  auto resent = again.Next();
  ASSERT_TRUE(resent.has_value());
  EXPECT_EQ(resent->payload, R"({"version":1,"data":{"a":1}})");
  EXPECT_EQ(resent->correlation_data, "req-1");
  auto got = again.Request("$SCW/twins/me/d/get", "", 1);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload, R"({"version":1,"data":{"a":1}})");
}

TEST_F(PluginSafetyTest, RepeatsOnTheSameConnectionAreNewRequests) {
  StartBroker();
  auto dev = std::make_unique<MqttClient>("q2", broker_->port(), MQTT_PROTOCOL_V5);
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/me/#"));
  // MQTT clients re-send only after reconnecting: the same QoS 2 request again on the same
  // connection (a periodic status write) runs and is answered each time.
  for (int version = 1; version <= 3; ++version) {
    ASSERT_TRUE(dev->Publish("$SCW/twins/me/d/put", R"({"data":{"a":1}})", 2));
    auto reply = dev->Next();
    ASSERT_TRUE(reply.has_value()) << version;
    EXPECT_EQ(reply->payload, R"({"version":)" + std::to_string(version) + R"(,"data":{"a":1}})");
  }
}

TEST_F(PluginSafetyTest, AnotherUserReusingAClientIdGetsNothingOfTheRememberedWrite) {
  TempDir auth;
  const std::string passwords = AlicesAndBobsPasswordFile(auth);
  ASSERT_FALSE(passwords.empty());
  StartBroker("plugin_opt_twin_identity username\nallow_anonymous false\npassword_file " + passwords + "\n");
  const std::string patch = R"({"data":{"ping":1}})";
  {
    RawMqtt bob(broker_->port());
    ASSERT_TRUE(bob.Connect("bobdev", true, std::nullopt, "bob", "pw-b"));
    bob.Publish("$SCW/twins/me/secret/put", R"({"data":{"pin":"1234"}})", 0);
    ASSERT_NE(NextPublish(bob), "<no reply>");
    bob.Publish("$SCW/twins/bob/secret/patch", patch, 2, 1);
    EXPECT_EQ(NextPublish(bob),
              R"($SCW/twins/bob/secret/patch/response/success {"version":2,"data":{"pin":"1234","ping":1}})");
  }
  RawMqtt alice(broker_->port());
  ASSERT_TRUE(alice.Connect("bobdev", true, std::nullopt, "alice", "pw-a"));
  alice.Publish("$SCW/twins/bob/secret/patch", patch, 2, 1);
  EXPECT_EQ(
      NextPublish(alice),
      R"j($SCW/twins/bob/secret/patch/response/error {"error":"a device may only use its own twin (its client id, or 'me')","argument":"twin_id"})j");
  alice.Publish("$SCW/twins/me/secret/patch", patch, 2, 2);
  EXPECT_EQ(NextPublish(alice), R"($SCW/twins/me/secret/patch/response/success {"version":1,"data":{"ping":1}})");
}

// Pushes are addressed by client id, which names no twin when twins are named by username:
// another user who connects with a watcher's client id must not receive its twin's changes.
TEST_F(PluginSafetyTest, AnotherUserReusingAWatchersClientIdGetsNoPushes) {
  TempDir auth;
  const std::string passwords = AlicesAndBobsPasswordFile(auth);
  ASSERT_FALSE(passwords.empty());
  StartBroker("plugin_opt_twin_identity username\nallow_anonymous false\npassword_file " + passwords + "\n");
  {
    RawMqtt watcher(broker_->port());
    ASSERT_TRUE(watcher.Connect("shared", true, std::nullopt, "alice", "pw-a"));
    watcher.Publish("$SCW/twins/me/secret/watch", "", 0);
    EXPECT_EQ(NextPublish(watcher), R"($SCW/twins/me/secret/watch/response/success {"version":0,"data":{}})");
  }
  RawMqtt bob(broker_->port());
  ASSERT_TRUE(bob.Connect("shared", true, std::nullopt, "bob", "pw-b"));
  bob.Publish("$SCW/twins/me/secret/get", "", 0);
  EXPECT_EQ(NextPublish(bob), R"($SCW/twins/me/secret/get/response/error {"error":"document not found"})");
  RawMqtt alice(broker_->port());
  ASSERT_TRUE(alice.Connect("alice-2", true, std::nullopt, "alice", "pw-a"));
  alice.Publish("$SCW/twins/me/secret/put", R"({"data":{"pin":"1234"}})", 0);
  EXPECT_EQ(NextPublish(alice), R"($SCW/twins/me/secret/put/response/success {"version":1,"data":{"pin":"1234"}})");
  // The push of that put would leave before the reply to a request sent after it: bob's own
  // request is the marker.
  bob.Publish("$SCW/twins/me/secret/get", "", 0);
  EXPECT_EQ(NextPublish(bob), R"($SCW/twins/me/secret/get/response/error {"error":"document not found"})");
  // alice, back under that client id, listens (a subscription under $SCW/twins/, as stock
  // clients listen) and hears of the next change.
  bob.Drop();
  RawMqtt back(broker_->port());
  ASSERT_TRUE(back.Connect("shared", true, std::nullopt, "alice", "pw-a"));
  back.Subscribe("$SCW/twins/me/secret/#", 1);
  ASSERT_TRUE(back.ReadType(9).has_value());  // SUBACK
  alice.Publish("$SCW/twins/me/secret/put", R"({"data":{"pin":"4321"}})", 0);
  EXPECT_EQ(NextPublish(alice), R"($SCW/twins/me/secret/put/response/success {"version":2,"data":{"pin":"4321"}})");
  EXPECT_EQ(NextPublish(back), R"($SCW/twins/me/secret/updated {"version":2,"data":{"pin":"4321"}})");
}

TEST_F(PluginSafetyTest, TwinNamedByUsernameCannotBeClaimedByChoosingAClientId) {
  TempDir auth;
  const std::string passwords = AlicesAndBobsPasswordFile(auth);
  ASSERT_FALSE(passwords.empty());
  StartBroker("plugin_opt_twin_identity username\nallow_anonymous false\npassword_file " + passwords + "\n");
  // alice connects with bob's client id: `me` is still alice, and bob's twin stays out of reach.
  RawMqtt alice(broker_->port());
  ASSERT_TRUE(alice.Connect("bob", true, std::nullopt, "alice", "pw-a"));
  alice.Publish("$SCW/twins/me/d/put", R"({"data":{"by":"alice"}})", 0);
  EXPECT_EQ(NextPublish(alice), R"($SCW/twins/me/d/put/response/success {"version":1,"data":{"by":"alice"}})");
  alice.Publish("$SCW/twins/bob/d/put", R"({"data":{"by":"alice"}})", 0);
  EXPECT_EQ(
      NextPublish(alice),
      R"j($SCW/twins/bob/d/put/response/error {"error":"a device may only use its own twin (its client id, or 'me')","argument":"twin_id"})j");
  RawMqtt bob(broker_->port());
  ASSERT_TRUE(bob.Connect("anything", true, std::nullopt, "bob", "pw-b"));
  bob.Publish("$SCW/twins/bob/d/get", "", 0);
  EXPECT_EQ(NextPublish(bob), R"($SCW/twins/bob/d/get/response/error {"error":"document not found"})");
  bob.Publish("$SCW/twins/alice/d/get", "", 0);
  EXPECT_EQ(NextPublish(bob).substr(0, 48), "$SCW/twins/alice/d/get/response/error {\"error\":\"");
}

TEST_F(PluginSafetyTest, WithoutAUsernameThereIsNoTwinUnderUsernameIdentity) {
  StartBroker("plugin_opt_twin_identity username\n");
  RawMqtt anonymous(broker_->port());
  ASSERT_TRUE(anonymous.Connect("dev1", true));
  anonymous.Publish("$SCW/twins/me/d/get", "", 0);
  EXPECT_EQ(
      NextPublish(anonymous),
      R"j($SCW/twins/me/d/get/response/error {"error":"this broker names twins by username: connect with a username (or a client certificate)","argument":"twin_id"})j");
  anonymous.Publish("$SCW/twins/dev1/d/get", "", 0);
  EXPECT_EQ(NextPublish(anonymous).substr(0, 40), "$SCW/twins/dev1/d/get/response/error {\"e");
}

TEST_F(PluginSafetyTest, ATakeoverNeverReceivesTheReplyToThePreviousConnection) {
  StartBroker();
  RawMqtt first(broker_->port());
  ASSERT_TRUE(first.Connect("dev", true));
  first.Publish("$SCW/twins/me/d/put", R"({"data":{"first":true}})", 0);
  ASSERT_NE(NextPublish(first), "<no reply>");
  // The old connection's request and the new connection's CONNECT are read in one loop pass
  // (the new connection accepted first: the broker reads a new socket only from the next pass).
  RawMqtt second(broker_->port());
  ASSERT_TRUE(broker_->WaitForLog("New connection from 127.0.0.1:" + std::to_string(second.local_port())));
  broker_->Pause();
  first.Publish("$SCW/twins/me/d/get", "", 0);
  second.SendConnect("dev", true);
  broker_->Resume();
  ASSERT_TRUE(second.AwaitConnack());
  second.Publish("$SCW/twins/me/d/patch", R"({"data":{"second":true}})", 0);
  std::string next = NextPublish(second);
  // Where the plugin replies from the request itself (Mosquitto 2.1) a takeover in that very
  // loop pass gets the reply: the exception the README states.
  if (broker_->log().find("twins: the broker ticks before network handling") != std::string::npos &&
      next.rfind("$SCW/twins/me/d/get/response/success ", 0) == 0) {
    next = NextPublish(second);
  }
  EXPECT_EQ(next, R"($SCW/twins/me/d/patch/response/success {"version":2,"data":{"first":true,"second":true}})");
}

TEST_F(PluginSafetyTest, ATwinOverItsRequestRateIsToldWhenToRetry) {
  StartBroker("plugin_opt_max_requests_per_second 1\nplugin_opt_request_burst 2\n");
  auto dev = std::make_unique<MqttClient>("flood", broker_->port());
  ASSERT_TRUE(dev->Subscribe("$SCW/twins/me/#"));
  EXPECT_EQ(dev->Request("$SCW/twins/me/d/put", R"({"data":{}})")->topic, "$SCW/twins/me/d/put/response/success");
  EXPECT_EQ(dev->Request("$SCW/twins/me/d/get", "")->topic, "$SCW/twins/me/d/get/response/success");
  // One token a second: among the next requests one is refused, unless each took a second.
  std::optional<Message> refused;
  for (int i = 0; i < 10 && !refused; ++i) {
    auto reply = dev->Request("$SCW/twins/me/d/patch", R"({"data":{"x":1}})");
    ASSERT_TRUE(reply.has_value());
    if (reply->topic == "$SCW/twins/me/d/patch/response/error") refused = reply;
  }
  ASSERT_TRUE(refused.has_value());
  const std::string prefix = R"({"error":"too many requests","retry_after_ms":)";
  ASSERT_EQ(refused->payload.substr(0, prefix.size()), prefix) << refused->payload;
  const long wait_ms = std::stol(refused->payload.substr(prefix.size()));
  EXPECT_GT(wait_ms, 0);
  EXPECT_LE(wait_ms, 1000);
  // Another twin is not slowed.
  auto other = std::make_unique<MqttClient>("calm", broker_->port());
  ASSERT_TRUE(other->Subscribe("$SCW/twins/me/#"));
  EXPECT_EQ(other->Request("$SCW/twins/me/d/get", "")->topic, "$SCW/twins/me/d/get/response/error");
  EXPECT_EQ(other->Request("$SCW/twins/me/d/put", R"({"data":{}})")->topic, "$SCW/twins/me/d/put/response/success");
}

TEST_F(PluginSafetyTest, AnAclFileAddedAtAReloadDecidesOtherTopicsFromThen) {
  StartBroker();
  const std::vector<std::string> open = {"allowed/a", "secret/s", "other/o", "marker/end"};
  EXPECT_EQ(NonTwinDeliveries(broker_->port()), open);
  TempDir files;
  std::ofstream(files.sub("acl")) << kReadmeAcl;
  std::ofstream(broker_->dir().sub("mosquitto.conf"), std::ios::app) << "acl_file " << files.sub("acl") << "\n";
  broker_->Reload();
  ASSERT_TRUE(broker_->WaitForLog("twins: configuration reloaded"));
  const std::vector<std::string> decided = {"allowed/a", "marker/end"};
  EXPECT_EQ(NonTwinDeliveries(broker_->port()), decided);
  // Twins still work after the reload.
  MqttClient dev("dev", broker_->port());
  ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
  EXPECT_EQ(dev.Request("$SCW/twins/me/d/put", R"({"data":{}})")->topic, "$SCW/twins/me/d/put/response/success");
}

TEST_F(PluginSafetyTest, APluginThatChecksNoAccessIsDeclaredWithOtherAccessChecksNo) {
  const std::string noop = std::string("plugin ") + TWINS_NOOP_PLUGIN + "\n";
  // Without twins, the noop plugin changes nothing: everything is allowed.
  broker_ = std::make_unique<Broker>("", noop);
  broker_->WithoutPlugin();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  const std::vector<std::string> without = NonTwinDeliveries(broker_->port());
  broker_->Stop();
  // With twins, its plugin line reads as another checker: the log says so and how to change it.
  StartBroker(noop);
  EXPECT_NE(broker_->log().find("left to the broker's other access checks (plugin " + std::string(TWINS_NOOP_PLUGIN) +
                                "); if none of them checks access, set plugin_opt_other_access_checks no"),
            std::string::npos)
      << broker_->log();
  broker_->Stop();
  StartBroker("plugin_opt_other_access_checks no\n" + noop);
  EXPECT_EQ(NonTwinDeliveries(broker_->port()), without);
  EXPECT_EQ(without.size(), 4u);
}

TEST_F(PluginSafetyTest, DynamicSecurityListedBeforeThePluginStopsTheBroker) {
  TempDir files;
  std::ofstream(files.sub("dynsec.json")) << kDynsecConfig;
  Broker broker("", "plugin " + BrokerPlugin("mosquitto_dynamic_security.so") + "\nplugin_opt_config_file " +
                        files.sub("dynsec.json") + "\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("is loaded before mosquitto_twins: it would let subscribers read forged twin replies"),
            std::string::npos)
      << broker.log();
}

// The broker limits of mosquitto.conf.example, as an admin copies them: the largest twin
// request is answered, a packet larger than any request needs costs its sender the connection.
TEST_F(PluginSafetyTest, TheExampleConfigurationRefusesPacketsNoTwinRequestNeeds) {
  std::ifstream example(std::string(TWINS_SOURCE_DIR) + "/mosquitto.conf.example");
  std::string limits;
  for (std::string line; std::getline(example, line);) {
    for (const char* key :
         {"max_packet_size ", "max_queued_messages ", "max_queued_bytes ", "max_inflight_messages "}) {
      if (line.rfind(key, 0) == 0) limits += line + "\n";
    }
  }
  ASSERT_NE(limits.find("max_packet_size "), std::string::npos) << limits;
  StartBroker("", limits);
  RawMqtt dev(broker_->port());
  ASSERT_TRUE(dev.Connect("dev", true));
  const std::string largest = R"({"data":{"s":")" + std::string(65000, 'x') + R"("}})" + std::string(69000, ' ');
  dev.Publish("$SCW/twins/me/d/put", largest, 0);
  EXPECT_EQ(NextPublish(dev).substr(0, 50), R"($SCW/twins/me/d/put/response/success {"version":1,)");
  RawMqtt flood(broker_->port());
  ASSERT_TRUE(flood.Connect("flood", true));
  flood.Publish("any/topic", std::string(300 * 1024, 'y'), 0);
  flood.PingReq();
  // The broker closes the connection: the read ends on that event, not on a timeout.
  EXPECT_FALSE(flood.ReadType(13, 10000).has_value()) << "the 300 KiB publish was taken";
  EXPECT_TRUE(flood.closed_by_peer()) << "the connection neither answered nor closed";
  dev.PingReq();
  EXPECT_TRUE(dev.ReadType(13).has_value());  // other connections go on
}

TEST_F(PluginSafetyTest, BadHardeningOptionsStopTheBrokerNamingTheOption) {
  for (const std::string option :
       {"plugin_opt_twin_identity cn\n", "plugin_opt_other_access_checks maybe\n",
        "plugin_opt_max_requests_per_second -1\n", "plugin_opt_max_requests_per_second many\n",
        "plugin_opt_request_burst 0\n", "plugin_opt_request_burst 99999999999\n"}) {
    Broker broker(option);
    EXPECT_FALSE(broker.Start()) << option;
    const std::string name = option.substr(0, option.find(' '));
    EXPECT_NE(broker.log().find("twins: " + name + ": "), std::string::npos) << broker.log();
  }
}

// A client that sends small QoS 1 requests for a large document and never reads. The rate
// limit is off to show the reclaiming alone; TWINS_UNREAD_REQUESTS and TWINS_UNREAD_OPTIONS
// (e.g. "" against an older plugin) serve the figures in the README.
TEST_F(PluginSafetyTest, UnreadRepliesDoNotGrowTheBroker) {
  const char* options = std::getenv("TWINS_UNREAD_OPTIONS");
  StartBroker(options ? options : "plugin_opt_max_requests_per_second 0\n", "max_queued_messages 100\n");
  if (broker_->log().find("does not export db__msg_store_compact") != std::string::npos) {
    GTEST_SKIP() << "this broker (upstream builds) does not export the compaction: it keeps the leak (README)";
  }
  const std::string big = R"({"data":{"blob":")" + std::string(60000, 'x') + "\"}}";
  {
    MqttClient owner("reader", broker_->port());
    ASSERT_TRUE(owner.Subscribe("$SCW/twins/me/#"));
    ASSERT_EQ(owner.Request("$SCW/twins/me/big/put", big)->topic, "$SCW/twins/me/big/put/response/success");
  }
  MqttClient done("done-watch", broker_->port());
  ASSERT_TRUE(done.Subscribe("marker/#"));
  const long before = broker_->RssKib();
  const char* count = std::getenv("TWINS_UNREAD_REQUESTS");
  const int kRequests = count ? std::atoi(count) : 20000;
  RawMqtt flood(broker_->port());
  ASSERT_TRUE(flood.Connect("reader", true));
  for (int i = 0; i < kRequests; ++i)
    flood.Publish("$SCW/twins/me/big/get", "", 1, static_cast<uint16_t>(i % 60000 + 1));
  flood.Publish("marker/flood-done", "", 0);  // read after every request: they are all answered
  auto marker = done.Next(600000);
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(marker->topic, "marker/flood-done");
  // Once the last drops are reclaimed (next tick): 20 000 leaked replies of 60 KB are 1.2 GB.
  MqttClient sync("sync", broker_->port());
  ASSERT_TRUE(sync.Publish("marker/sync", "", 1));
  const long growth_mib = (broker_->RssKib() - before) / 1024;
  RecordProperty("rss_growth_mib", static_cast<int>(growth_mib));
#ifdef TWINS_BROKER_PRELOAD
  // AddressSanitizer's quarantine keeps freed memory resident, and its slower broker leaves
  // more garbage between two reclaims; without reclaiming, 20 000 replies are 1.2 GB.
  constexpr long kAllocatorMib = 600;
#else
  constexpr long kAllocatorMib = 0;
#endif
  EXPECT_LT(growth_mib, 200 + kAllocatorMib) << "broker RSS grew by " << growth_mib << " MiB";
}

}  // namespace
}  // namespace twins::test
