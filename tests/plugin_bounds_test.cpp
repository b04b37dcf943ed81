// One device must not be able to hurt another: the worst request shapes within the limits,
// large `_config` documents and out-of-range versions, against the real broker. These tests
// check replies, never time: what each shape costs is measured by bench/worst_case_bench.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "tests/support/broker.hpp"
#include "tests/support/mqtt_client.hpp"

namespace twins::test {
namespace {

// {"<prefix>k00000":<value>,...} with `count` members, compact (as stored).
std::string Members(int count, const std::string& prefix, const std::string& value) {
  std::string data = "{";
  char key[16];
  for (int i = 0; i < count; ++i) {
    snprintf(key, sizeof key, "k%05d", i);
    data += (i ? ",\"" : "\"") + prefix + key + "\":" + value;
  }
  return data + "}";
}

// {"aaa":0,"aab":0,...} with `count` members of three-letter keys: as many keys as fit a body.
std::string ShortKeys(int count) {
  std::string data = "{";
  for (int i = 0; i < count; ++i) {
    const char key[] = {'"',
                        static_cast<char>('a' + i / 676 % 26),
                        static_cast<char>('a' + i / 26 % 26),
                        static_cast<char>('a' + i % 26),
                        '"',
                        ':',
                        '0',
                        ','};
    data.append(key, sizeof key);
  }
  data.back() = '}';
  return data;
}

class PluginBoundsTest : public testing::Test {
 protected:
  void SetUp() override { Start(""); }
  void TearDown() override {
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }
  void Start(const std::string& options) {
    if (broker_) broker_->Stop();
    broker_ = std::make_unique<Broker>(options);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  std::unique_ptr<MqttClient> Device(const std::string& id) {
    auto client = std::make_unique<MqttClient>(id, broker_->port());
    EXPECT_TRUE(client->connected());
    EXPECT_TRUE(client->Subscribe("$SCW/twins/me/#"));
    return client;
  }

  // "topic payload" of the next message, waiting long enough for a slow (sanitizer) build.
  static std::string Next(MqttClient& client) {
    auto reply = client.Next(20000);
    return reply ? reply->topic + " " + reply->payload : "<no reply>";
  }
  static std::string Ask(MqttClient& client, const std::string& topic, const std::string& payload) {
    if (!client.Publish(topic, payload, 1)) return "<not published>";
    return Next(client);
  }

  std::unique_ptr<Broker> broker_;
};

// A body at the request limit with ~16 800 distinct keys, and a document of 6 500
// escaped keys patched with 8 000 new ones. Both are answered, and so is another device
// whose get arrives while they are being handled.
TEST_F(PluginBoundsTest, ManyKeyRequestsAreAnsweredAndAnotherDeviceIsToo) {
  auto attacker = Device("attacker");
  auto other = Device("other");
  ASSERT_EQ(Ask(*other, "$SCW/twins/me/d/put", R"({"data":{"a":1}})"),
            R"($SCW/twins/me/d/put/response/success {"version":1,"data":{"a":1}})");

  const std::string escaped_document = Members(5000, "\\n", "0");  // 65 001 bytes
  ASSERT_EQ(Ask(*attacker, "$SCW/twins/me/big/put", "{\"data\":" + escaped_document + "}"),
            "$SCW/twins/me/big/put/response/success {\"version\":1,\"data\":" + escaped_document + "}");

  const std::string many_keys = ShortKeys(16800);  // 134 400 bytes
  const std::string new_keys = Members(8000, "x", "0");
  for (int i = 0; i < 3; ++i) {  // QoS 0: queued at the broker while the get below waits
    ASSERT_TRUE(attacker->Publish("$SCW/twins/me/d/put", "{\"data\":" + many_keys + "}", 0));
    ASSERT_TRUE(attacker->Publish("$SCW/twins/me/big/patch", "{\"data\":" + new_keys + "}", 0));
  }
  EXPECT_EQ(Ask(*other, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/success {"version":1,"data":{"a":1}})");
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Next(*attacker), "$SCW/twins/me/d/put/response/error {\"error\":\"document of " +
                                   std::to_string(many_keys.size()) +
                                   " bytes is larger than the limit of 65536\",\"argument\":\"data\"}");
    EXPECT_EQ(
        Next(*attacker),
        R"($SCW/twins/me/big/patch/response/error {"error":"document would be larger than the limit of 65536 bytes","argument":"data"})");
  }
  // Patching every one of the escaped keys is accepted and merges exactly.
  EXPECT_EQ(Ask(*attacker, "$SCW/twins/me/big/patch", "{\"data\":" + Members(5000, "\\n", "1") + "}"),
            "$SCW/twins/me/big/patch/response/success {\"version\":2,\"data\":" + Members(5000, "\\n", "1") + "}");
}

TEST_F(PluginBoundsTest, DuplicateKeysAmongManyAreRefusedByName) {
  auto dev = Device("dev1");
  std::string data = Members(12000, "", "0");
  data.back() = ',';
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/patch", "{\"data\":" + data + "\"\\u006b10345\":1}}"),
            R"($SCW/twins/me/d/patch/response/error {"error":"data.k10345: duplicate key","argument":"data"})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/d/get", ""),
            R"($SCW/twins/me/d/get/response/error {"error":"document not found"})");
}

TEST_F(PluginBoundsTest, VersionAbove2To53IsRefusedWithAClearError) {
  auto dev = Device("dev1");
  ASSERT_EQ(Ask(*dev, "$SCW/twins/me/d/put", R"({"data":{"a":1}})"),
            R"($SCW/twins/me/d/put/response/success {"version":1,"data":{"a":1}})");
  for (const char* method : {"put", "patch", "delete"}) {
    const std::string body = std::string(R"({"version":9007199254740993)") +
                             (method[0] == 'd' ? "}" : R"(,"data":{}})");
    EXPECT_EQ(Ask(*dev, std::string("$SCW/twins/me/d/") + method, body),
              std::string("$SCW/twins/me/d/") + method +
                  R"(/response/error {"error":"version must be an integer from 0 to 2^53","argument":"version"})");
  }
  // 2^53 itself is a version: the mismatch reports it as sent.
  EXPECT_EQ(
      Ask(*dev, "$SCW/twins/me/d/put", R"({"version":9007199254740992,"data":{}})"),
      R"($SCW/twins/me/d/put/response/error {"error":"document version mismatch","twin_id":"dev1","document_name":"d","expected_version":9007199254740992,"actual_version":1})");
}

TEST_F(PluginBoundsTest, LargeConfigIsRefusedWithAClearError) {
  auto dev = Device("dev1");
  std::string config = R"({"documents":{)";
  for (int i = 0; config.size() < 9000; ++i) {
    config += (i ? ",\"d" : "\"d") + std::to_string(i) + R"(":{"_tsdb_trigger":"on-change"})";
  }
  config += "}}";
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/_config/put", "{\"data\":" + config + "}"),
            "$SCW/twins/me/_config/put/response/error {\"error\":\"_config of " + std::to_string(config.size()) +
                " bytes is larger than the limit of 8192 (max_config_bytes)\",\"argument\":\"data\"}");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/_config/get", ""),
            R"($SCW/twins/me/_config/get/response/error {"error":"document not found"})");
  const std::string fits = R"({"documents":{"d":{"_tsdb_trigger":"on-change"}}})";
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/_config/put", "{\"data\":" + fits + "}"),
            "$SCW/twins/me/_config/put/response/success {\"version\":1,\"data\":" + fits + "}");
}

TEST_F(PluginBoundsTest, ConfigLimitIsConfigurable) {
  Start("plugin_opt_max_config_bytes 40\n");
  auto dev = Device("dev1");
  EXPECT_EQ(
      Ask(*dev, "$SCW/twins/me/_config/patch", R"({"data":{"documents":{"d":{"_tsdb_trigger":"on-change"}}}})"),
      R"j($SCW/twins/me/_config/patch/response/error {"error":"_config of 49 bytes is larger than the limit of 40 (max_config_bytes)","argument":"data"})j");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/_config/patch", R"({"data":{"documents":{"d":{"_tags":{}}}}})"),
            R"($SCW/twins/me/_config/patch/response/success {"version":1,"data":{"documents":{"d":{"_tags":{}}}}})");
}

TEST(PluginBoundsOptionsTest, BadConfigBytesOrSeriesLimitStopsTheBrokerNamingTheOption) {
  Broker bytes("plugin_opt_max_config_bytes 1\n");
  EXPECT_FALSE(bytes.Start());
  EXPECT_NE(bytes.log().find("plugin_opt_max_config_bytes: 1 is out of range 2..67108864"), std::string::npos)
      << bytes.log();
  Broker series("plugin_opt_max_series_per_twin many\n");
  EXPECT_FALSE(series.Start());
  EXPECT_NE(series.log().find("plugin_opt_max_series_per_twin: 'many' is not a whole number"), std::string::npos)
      << series.log();
}

}  // namespace
}  // namespace twins::test
