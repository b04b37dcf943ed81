// The broker wake (plugin/broker_wake.hpp) against the real broker: work queued by REST threads
// runs through the wake connection; the connection's authentication changes nothing for other
// clients, and nobody can use, spoof, read or trigger it. REST threads' work is made visible by a
// wrong token, whose log line goes through the broker queue. "Nothing arrives" is proved by a
// marker sent after, arriving first.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/broker.hpp"
#include "tests/support/broker_test.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/raw_mqtt.hpp"

namespace twins::test {
namespace {

const std::string kWakeId = "mosquitto-twins-wake";
const std::string kConnected = "twins: broker wake connected to ";

class WakeTest : public BrokerTest {
 protected:
  // A broker with REST (token "t", metrics without a token) and `options`.
  void StartBroker(const std::string& options = "", const std::string& global = "") {
    do {  // two free ports, not the same one twice
      rest_port_ = FreePort();
      broker_ = std::make_unique<Broker>("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_port_) +
                                             "\nplugin_opt_rest_token t\nplugin_opt_metrics_allow_anonymous true\n" +
                                             options,
                                         global);
    } while (broker_->port() == rest_port_);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }
  // The value of an unlabelled metric, -1 when it is not there.
  long Metric(const std::string& name) {
    HttpCall call;
    call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + "/metrics";
    const std::string body = http_.Send(call).body;
    const size_t at = body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::atol(body.c_str() + at + name.size() + 2);
  }
  // A REST request with a wrong token: its log line is written by the broker thread.
  bool RestThreadWorkRuns(const std::string& token) {
    HttpCall call;
    call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + "/iot/v1/regions/fr-par/twins";
    call.headers = {"X-Auth-Token: " + token};
    if (http_.Send(call).status != 401) return false;
    return broker_->WaitForLog("REST: authentication failed from 127.0.0.1");  // only a peer's first is logged
  }
  // Waits until the wake counter passes `above`; the counter is read from the broker.
  bool WakesPass(long above) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (Metric("twins_broker_wakes_total") <= above) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  static std::string PasswordFile(const TempDir& dir) {
    const std::string file = dir.sub("passwords");
    const std::string make = "mosquitto_passwd -b -c " + file + " alice pw-a >/dev/null";
    return std::system(make.c_str()) == 0 ? file : std::string();
  }

  int rest_port_ = 0;
  HttpClient http_;
};

TEST_F(WakeTest, ConnectsToTheBrokersListenerAndRunsRestThreadWorkThroughIt) {
  StartBroker();
  ASSERT_TRUE(broker_->WaitForLog(kConnected + "127.0.0.1:" + std::to_string(broker_->port())));
  ASSERT_TRUE(WakesPass(0));  // its own "connected" line came through it
  EXPECT_EQ(Metric("twins_broker_wake_connected"), 1);
  const long before = Metric("twins_broker_wakes_total");
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_TRUE(WakesPass(before));
}

TEST_F(WakeTest, OffLeavesRestThreadWorkToTheTick) {
  StartBroker("plugin_opt_wake_address off\n");
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_EQ(Metric("twins_broker_wakes_total"), 0);
  EXPECT_EQ(Metric("twins_broker_wake_connected"), 0);
  EXPECT_EQ(broker_->log().find("broker wake"), std::string::npos) << broker_->log();
}

TEST_F(WakeTest, UnixSocketListenerIsUsedWhenItComesFirst) {
  TempDir dir;
  const std::string socket = dir.sub("mqtt.sock");
  StartBroker("", "listener 0 " + socket + "\n");
  ASSERT_TRUE(broker_->WaitForLog(kConnected + socket));
  const long before = Metric("twins_broker_wakes_total");
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_TRUE(WakesPass(before));
}

TEST_F(WakeTest, UnreachableAddressIsLoggedOnceAndWorkWaitsForTheTick) {
  const int nobody = FreePort();
  StartBroker("plugin_opt_wake_address 127.0.0.1:" + std::to_string(nobody) + "\n");
  ASSERT_TRUE(broker_->WaitForLog("twins: broker wake: cannot connect: Connection refused (127.0.0.1:" +
                                  std::to_string(nobody) + "); work from other threads waits for the broker's tick"));
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_EQ(Metric("twins_broker_wake_connected"), 0);
  EXPECT_EQ(Metric("twins_broker_wakes_total"), 0);
  const std::string log = broker_->log();
  EXPECT_EQ(log.find("cannot connect"), log.rfind("cannot connect")) << log;  // one line per outage
}

TEST_F(WakeTest, BadAddressIsRefusedAtStart) {
  for (const std::string bad : {"localhost", "127.0.0.1:0", "127.0.0.1:65536", ":1883", "::1:1883", "host:x"}) {
    Broker broker("plugin_opt_wake_address " + bad + "\n");
    EXPECT_FALSE(broker.Start()) << bad;
    EXPECT_NE(broker.log().find("plugin_opt_wake_address: '" + bad + "'"), std::string::npos) << broker.log();
  }
}

TEST_F(WakeTest, TlsOnlyBrokerSaysWhatToAddAndStillRunsRestThreadWork) {
  TempDir dir;
  const std::string key = dir.sub("key.pem"), cert = dir.sub("cert.pem");
  const std::string make = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                           " -out " + cert + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0);
  // Listener settings after the plugin lines apply to the broker's only listener.
  StartBroker("certfile " + cert + "\nkeyfile " + key + "\n");
  EXPECT_TRUE(broker_->WaitForLog("twins: broker wake off: no plain MQTT listener (listener " +
                                  std::to_string(broker_->port()) +
                                  " 127.0.0.1: TLS); work from REST and other "
                                  "threads waits for the broker's tick (up to 100 ms). Add a plain listener, e.g. "
                                  "`listener 1884 127.0.0.1`"));
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_EQ(Metric("twins_broker_wakes_total"), 0);
}

TEST_F(WakeTest, PasswordFileStillDecidesForOtherClients) {
  TempDir dir;
  const std::string passwords = PasswordFile(dir);
  ASSERT_FALSE(passwords.empty());
  StartBroker("allow_anonymous false\npassword_file " + passwords + "\n");
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  RawMqtt alice(broker_->port()), wrong(broker_->port()), anonymous(broker_->port()), stranger(broker_->port());
  EXPECT_TRUE(alice.Connect("alice-dev", true, std::nullopt, "alice", "pw-a"));
  EXPECT_FALSE(wrong.Connect("alice-dev2", true, std::nullopt, "alice", "pw-b"));
  EXPECT_FALSE(anonymous.Connect("anon-dev", true));
  EXPECT_FALSE(stranger.Connect("stranger-dev", true, std::nullopt, "stranger", "pw"));
}

TEST_F(WakeTest, AnonymousBrokerStillLetsEveryoneIn) {
  StartBroker();
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  RawMqtt anonymous(broker_->port()), named(broker_->port());
  EXPECT_TRUE(anonymous.Connect("anon-dev", true));
  // Mosquitto 2.0 refuses a client with a username when a basic-auth callback defers and
  // nothing else authenticates: the plugin must not make it so.
  EXPECT_TRUE(named.Connect("named-dev", true, std::nullopt, "someone", "anything"));
}

TEST_F(WakeTest, PasswordFileAddedByAReloadDecidesFromThen) {
  StartBroker();
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  RawMqtt before(broker_->port());
  EXPECT_TRUE(before.Connect("before-dev", true, std::nullopt, "alice", "anything"));
  TempDir dir;
  const std::string passwords = PasswordFile(dir);
  ASSERT_FALSE(passwords.empty());
  std::ofstream(broker_->dir().sub("mosquitto.conf"), std::ios::app) << "password_file " << passwords << "\n";
  broker_->Reload();
  ASSERT_TRUE(broker_->WaitForLog("twins: configuration reloaded"));
  RawMqtt wrong(broker_->port()), right(broker_->port());
  EXPECT_FALSE(wrong.Connect("wrong-dev", true, std::nullopt, "alice", "anything"));
  EXPECT_TRUE(right.Connect("right-dev", true, std::nullopt, "alice", "pw-a"));
}

TEST_F(WakeTest, AnonymousRefusedStaysRefused) {
  StartBroker("allow_anonymous false\n");
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  RawMqtt anonymous(broker_->port()), named(broker_->port());
  EXPECT_FALSE(anonymous.Connect("anon-dev", true));
  EXPECT_FALSE(named.Connect("named-dev", true, std::nullopt, "someone", "anything"));
}

TEST_F(WakeTest, ImpostorsOfTheWakeAreRefusedAndTheWakeStaysUp) {
  StartBroker();
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  RawMqtt same_id(broker_->port()), same_user(broker_->port()), both(broker_->port());
  EXPECT_FALSE(same_id.Connect(kWakeId, true));
  EXPECT_FALSE(same_user.Connect("someone", true, std::nullopt, kWakeId, "guess"));
  EXPECT_FALSE(both.Connect(kWakeId, true, std::nullopt, kWakeId, "0123456789abcdef0123456789abcdef"));
  EXPECT_EQ(Metric("twins_broker_wake_connected"), 1);
  const long before = Metric("twins_broker_wakes_total");
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  EXPECT_TRUE(WakesPass(before));
  EXPECT_EQ(broker_->log().find("broker wake connected again"), std::string::npos) << broker_->log();
}

TEST_F(WakeTest, WakeTopicCarriesNothingForOthers) {
  StartBroker();
  ASSERT_TRUE(broker_->WaitForLog(kConnected));
  MqttClient reader("reader", broker_->port());
  ASSERT_TRUE(reader.Subscribe("$SCW/twins/_wake"));
  ASSERT_TRUE(reader.Subscribe("$SCW/twins/#"));
  ASSERT_TRUE(reader.Subscribe("marker/#"));
  ASSERT_TRUE(WakesPass(0));
  const long before = Metric("twins_broker_wakes_total");
  // Another client's publish on the wake topic is refused and wakes nothing.
  MqttClient writer("writer", broker_->port());
  writer.Publish("$SCW/twins/_wake", "", 0);
  writer.Publish("$SCW/twins/_wake", "x", 1);
  // The wake's own publishes reach nobody either.
  ASSERT_TRUE(RestThreadWorkRuns("wrong"));
  ASSERT_TRUE(WakesPass(before));
  const long after = Metric("twins_broker_wakes_total");
  ASSERT_TRUE(writer.Publish("marker/done", "1"));
  auto first = reader.Next();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->topic, "marker/done");
  EXPECT_EQ(Metric("twins_broker_wakes_total"), after);  // the writer's publishes woke nothing
}

}  // namespace
}  // namespace twins::test
