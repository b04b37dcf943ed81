// The plugin inside a real mosquitto serving both APIs over one engine: MQTT devices and the
// REST API see each other's writes, and twin writes reach a real carbon-cache.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "engine/json.hpp"
#include "store/document_store.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/carbon_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/mqtt_client.hpp"

namespace twins::test {
namespace {

constexpr char kToken[] = "6d0b1d4e-3b7c-4a8e-9f1a-2c5d7e9f0a1b";

// {"version":N,"data":{"n":M}} -> (N, M)
std::pair<int, int> VersionAndCounter(const std::string& json) {
  Json doc(cJSON_Parse(json.c_str()));
  const cJSON* version = cJSON_GetObjectItem(doc.get(), "version");
  const cJSON* n = cJSON_GetObjectItem(cJSON_GetObjectItem(doc.get(), "data"), "n");
  return {version ? version->valueint : -1, n ? n->valueint : -1};
}

class BrokerWithRest : public testing::Test {
 protected:
  void SetUp() override { Start(); }
  void TearDown() override {
    broker_->Stop();
    EXPECT_TRUE(broker_->exited_cleanly()) << broker_->log();
  }

  void Start(const std::string& extra = "") {
    if (broker_) broker_->Stop();
    rest_port_ = FreePort();
    broker_ = std::make_unique<Broker>("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(rest_port_) +
                                       "\nplugin_opt_rest_token " + kToken + "\n" + extra);
    ASSERT_TRUE(broker_->Start()) << broker_->log();
  }

  HttpReply Rest(const std::string& method, const std::string& path, const std::string& body = "",
                 std::vector<std::string> headers = {}) {
    HttpCall call;
    call.method = method;
    call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + path;
    call.send_body = !body.empty();
    call.body = body;
    headers.push_back(std::string("X-Auth-Token: ") + kToken);
    headers.push_back("Content-Type: application/json; charset=utf-8");
    call.headers = headers;
    return http_.Send(call);
  }
  static std::string Doc(const std::string& twin, const std::string& doc) {
    return "/iot/v1/regions/fr-par/twins/" + twin + "/documents/" + doc;
  }

  std::unique_ptr<MqttClient> Device(const std::string& id) {
    auto client = std::make_unique<MqttClient>(id, broker_->port());
    EXPECT_TRUE(client->Subscribe("$SCW/twins/me/#"));
    return client;
  }

  std::unique_ptr<Broker> broker_;
  int rest_port_ = 0;
  HttpClient http_;
};

TEST_F(BrokerWithRest, RestWriteIsWhatTheNextMqttGetReturns) {
  auto put = Rest("PUT", Doc("dev1", "desired"), R"({"data":{"target":21}})");
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(put.body, R"({"twin_id":"dev1","document_name":"desired","version":1,"data":{"target":21}})");
  auto dev = Device("dev1");
  auto reply = dev->Request("$SCW/twins/me/desired/get", "");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->payload, R"({"version":1,"data":{"target":21}})");
}

TEST_F(BrokerWithRest, MqttPatchIsWhatTheNextRestGetReturns) {
  auto dev = Device("dev1");
  ASSERT_TRUE(dev->Request("$SCW/twins/me/current/patch", R"({"data":{"temp":20.5,"fan":{"on":true}}})"));
  auto get = Rest("GET", Doc("dev1", "current"));
  ASSERT_EQ(get.status, 200);
  EXPECT_EQ(get.body,
            R"({"twin_id":"dev1","document_name":"current","version":1,"data":{"temp":20.5,"fan":{"on":true}}})");
  EXPECT_EQ(get.header("etag"), "\"1\"");
  EXPECT_EQ(get.header("content-type"), "application/json");
}

TEST_F(BrokerWithRest, RestErrorsAndMqttErrorsLeaveTheOtherSideUnchanged) {
  auto dev = Device("dev1");
  ASSERT_TRUE(dev->Request("$SCW/twins/me/d/put", R"({"data":{"a":1}})"));
  EXPECT_EQ(Rest("PATCH", Doc("dev1", "d"), R"({"version":7,"data":{"a":2}})").status, 412);
  EXPECT_EQ(Rest("PATCH", Doc("dev1", "d"), R"({"data":{"a":[null]}})").status, 400);
  auto bad = dev->Request("$SCW/twins/me/d/patch", R"({"data":{"_a":2}})");
  ASSERT_TRUE(bad.has_value());
  EXPECT_EQ(bad->topic, "$SCW/twins/me/d/patch/response/error");
  EXPECT_EQ(Rest("GET", Doc("dev1", "d")).body, R"({"twin_id":"dev1","document_name":"d","version":1,"data":{"a":1}})");
}

// A device over MQTT and a back-end over REST increment one counter with versioned writes,
// retrying on conflicts: every increment lands once.
TEST_F(BrokerWithRest, MixedVersionedWritersLoseNoUpdate) {
  // Conflicts make the writers retry without pause, well past the per-twin rate limit, and a
  // refused get would then spin: this test is about versions, so no limit.
  Start("plugin_opt_max_requests_per_second 0\n");
  constexpr int kEach = 60;
  ASSERT_EQ(Rest("PUT", Doc("dev1", "counter"), R"({"data":{"n":0}})").status, 200);
  std::thread device([&] {
    auto dev = Device("dev1");
    for (int done = 0; done < kEach;) {
      auto got = dev->Request("$SCW/twins/me/counter/get", "");
      ASSERT_TRUE(got.has_value());
      auto [version, n] = VersionAndCounter(got->payload);
      auto patch = dev->Request("$SCW/twins/me/counter/patch", R"({"version":)" + std::to_string(version) +
                                                                   R"(,"data":{"n":)" + std::to_string(n + 1) + "}}");
      ASSERT_TRUE(patch.has_value());
      if (patch->topic.find("/success") != std::string::npos) ++done;
    }
  });
  HttpClient backend;
  for (int done = 0; done < kEach;) {
    auto got = Rest("GET", Doc("dev1", "counter"));
    ASSERT_EQ(got.status, 200);
    auto [version, n] = VersionAndCounter(got.body);
    auto patch = Rest("PATCH", Doc("dev1", "counter"), R"({"data":{"n":)" + std::to_string(n + 1) + "}}",
                      {"If-Match: \"" + std::to_string(version) + "\""});
    ASSERT_TRUE(patch.status == 200 || patch.status == 412) << patch.body;
    if (patch.status == 200) ++done;
  }
  device.join();
  auto final_doc = Rest("GET", Doc("dev1", "counter"));
  EXPECT_EQ(VersionAndCounter(final_doc.body), std::make_pair(2 * kEach + 1, 2 * kEach)) << final_doc.body;
}

TEST_F(BrokerWithRest, RestWritesSurviveABrokerRestart) {
  ASSERT_EQ(Rest("PUT", Doc("dev%201", "d"), R"({"data":{"kept":true}})").status, 200);
  broker_->Stop();
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  http_.Disconnect();
  auto get = Rest("GET", "/iot/v1/regions/fr-par/twins/dev%201/documents/d");
  EXPECT_EQ(get.body, R"({"twin_id":"dev 1","document_name":"d","version":1,"data":{"kept":true}})");
}

// A stored document that is not a JSON object cannot be patched: an internal error. Both APIs
// answer with a log id only; the broker log has the detail beside that id.
TEST_F(BrokerWithRest, InternalErrorsAreAnsweredWithALogIdOnBothApis) {
  broker_->Stop();
  {
    auto store = OpenRocksDbStore(broker_->db_path());
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->Put("dev1", "d", StoredDocument{1, "[1]"}).ok());
  }
  ASSERT_TRUE(broker_->Start()) << broker_->log();
  http_.Disconnect();
  const std::regex log_id("\\(log id ([0-9a-f]{8})\\)");
  std::smatch id;

  auto dev = Device("dev1");
  auto reply = dev->Request("$SCW/twins/me/d/patch", R"({"data":{"a":1}})");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/me/d/patch/response/error");
  ASSERT_TRUE(std::regex_search(reply->payload, id, log_id)) << reply->payload;
  EXPECT_EQ(reply->payload, R"({"error":"internal error (log id )" + id[1].str() + ")\"}");
  EXPECT_TRUE(
      broker_->WaitForLog("twins: MQTT: internal error on $SCW/twins/me/d/patch: stored document is not a "
                          "JSON object (log id " +
                          id[1].str() + ")"))
      << broker_->log();

  auto patch = Rest("PATCH", Doc("dev1", "d"), R"({"data":{"a":1}})");
  EXPECT_EQ(patch.status, 500);
  ASSERT_TRUE(std::regex_search(patch.body, id, log_id)) << patch.body;
  EXPECT_EQ(patch.body, R"({"type":"internal_error","message":"internal error (log id )" + id[1].str() + ")\"}");
  EXPECT_TRUE(broker_->WaitForLog("twins: REST: internal error: stored document is not a JSON object (log id " +
                                  id[1].str() + ")"))
      << broker_->log();
}

TEST_F(BrokerWithRest, HealthzAnswersWithoutToken) {
  HttpCall call;
  call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + "/healthz";
  EXPECT_EQ(http_.Send(call).status, 200);
  call.url = "http://127.0.0.1:" + std::to_string(rest_port_) + "/iot/v1/regions/fr-par/twins/dev1";
  EXPECT_EQ(http_.Send(call).status, 401);
}

TEST_F(BrokerWithRest, StartLogNamesTheRestEndpoint) {
  EXPECT_NE(broker_->log().find("twins: REST API on 127.0.0.1:" + std::to_string(rest_port_)), std::string::npos)
      << broker_->log();
}

// Debian 12's CivetWeb needs the OpenSSL 3 compatibility libraries shipped beside the plugin.
TEST(BrokerRestTlsTest, RestServesHttpsWithTheConfiguredCertificate) {
  TempDir dir;
  const std::string pem = dir.sub("twins.pem");
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " +
                              dir.sub("key.pem") + " -out " + dir.sub("cert.pem") + " >/dev/null 2>&1 && cat " +
                              dir.sub("cert.pem") + " " + dir.sub("key.pem") + " > " + pem;
  ASSERT_EQ(std::system(command.c_str()), 0);
  const int port = FreePort();
  Broker broker("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(port) + "s\nplugin_opt_rest_tls_cert " + pem +
                "\nplugin_opt_rest_token " + kToken + "\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  ASSERT_TRUE(WaitForPort(port, 5000)) << broker.log();
  HttpClient client;
  HttpCall call;
  call.url = "https://127.0.0.1:" + std::to_string(port) + "/iot/v1/regions/fr-par/twins/dev1/documents/d";
  call.method = "PUT";
  call.send_body = true;
  call.body = R"({"data":{"secure":true}})";
  call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"};
  call.insecure_tls = true;
  auto reply = client.Send(call);
  EXPECT_EQ(reply.status, 200) << reply.error << broker.log();
  EXPECT_EQ(reply.body, R"({"twin_id":"dev1","document_name":"d","version":1,"data":{"secure":true}})");
  call.url = "http://127.0.0.1:" + std::to_string(port) + "/healthz";
  call.method = "GET";
  call.send_body = false;
  EXPECT_NE(client.Send(call).status, 200);  // plain HTTP is not served on the TLS port
}

TEST(BrokerRestTlsTest, UnreadableCertificateStopsTheBroker) {
  Broker broker("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(FreePort()) +
                "s\nplugin_opt_rest_tls_cert /nonexistent/twins.pem\nplugin_opt_rest_token t\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("twins: REST API: "), std::string::npos) << broker.log();
}

TEST(BrokerRestOptionsTest, NoTokenLeavesRestOffWithAWarningAndMqttWorking) {
  const int port = FreePort();
  Broker broker("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(port) + "\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  EXPECT_NE(broker.log().find("twins: REST API not started: no plugin_opt_rest_token"), std::string::npos)
      << broker.log();
  // The broker listens, so the plugin is done starting: a refused connection is its final word.
  const int rest = ConnectLoopback(port);
  EXPECT_EQ(rest, -1) << "something listens on the REST port";
  if (rest >= 0) close(rest);
  MqttClient dev("dev1", broker.port());
  ASSERT_TRUE(dev.Subscribe("$SCW/twins/me/#"));
  auto reply = dev.Request("$SCW/twins/me/d/put", R"({"data":{}})");
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->topic, "$SCW/twins/me/d/put/response/success");
}

TEST(BrokerRestOptionsTest, RestPortInUseStopsTheBrokerWithAClearLine) {
  int holder = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(holder, 1), 0);
  socklen_t len = sizeof addr;
  getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len);
  Broker broker("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
                "\nplugin_opt_rest_token t\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("twins: REST API: cannot start the REST server"), std::string::npos) << broker.log();
  close(holder);
}

TEST(BrokerRestOptionsTest, MissingTokensFileStopsTheBrokerNamingIt) {
  Broker broker("plugin_opt_rest_listen 127.0.0.1:" + std::to_string(FreePort()) +
                "\nplugin_opt_rest_tokens_file /nonexistent/tokens\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find("plugin_opt_rest_tokens_file"), std::string::npos) << broker.log();
  EXPECT_NE(broker.log().find("/nonexistent/tokens"), std::string::npos) << broker.log();
}

int64_t UnixNow() { return static_cast<int64_t>(std::time(nullptr)); }

// Twin writes over MQTT and REST pushed to a real carbon-cache, and an outage of it.
class BrokerWithGraphite : public BrokerWithRest {
 protected:
  void SetUp() override {
    carbon_ = std::make_unique<CarbonServer>(dir_.sub("carbon"));
    std::string error;
    ASSERT_TRUE(carbon_->Start(&error)) << error;
    Start("plugin_opt_graphite_url " + carbon_->url() + "\n");
  }
  TempDir dir_;
  std::unique_ptr<CarbonServer> carbon_;
};

TEST_F(BrokerWithGraphite, MqttAndRestWritesReachCarbonWithTags) {
  auto dev = Device("dev1");
  auto config = dev->Request(
      "$SCW/twins/me/_config/put",
      R"({"data":{"documents":{"current":{"_tsdb_trigger":"on-update","_tags":{"site":"lyon"}}}}})");
  ASSERT_TRUE(config.has_value());
  ASSERT_EQ(config->topic, "$SCW/twins/me/_config/put/response/success") << config->payload;
  const int64_t t0 = UnixNow();
  ASSERT_TRUE(dev->Request("$SCW/twins/me/current/patch", R"({"data":{"temp":21.5,"label":"x","on":true}})"));
  ASSERT_EQ(Rest("PATCH", Doc("dev1", "current"), R"({"data":{"fan":{"rpm":1200}}})").status, 200);
  const std::string tags = ";document=current;site=lyon;twin_id=dev1";
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.current.temp;json_path=temp" + tags, t0, UnixNow() + 1), 21.5);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.current.on;json_path=on" + tags, t0, UnixNow() + 1), 1.0);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.current.fan.rpm;json_path=fan.rpm" + tags, t0, UnixNow() + 1), 1200.0);
  EXPECT_FALSE(std::filesystem::exists(carbon_->WhisperFile("twins.dev1.current.label;json_path=label" + tags)));
}

TEST_F(BrokerWithGraphite, TwinRequestsSucceedWhileCarbonIsDownAndPushesResume) {
  auto dev = Device("dev1");
  ASSERT_TRUE(
      dev->Request("$SCW/twins/me/_config/put", R"({"data":{"documents":{"current":{"_tsdb_trigger":"on-update"}}}})"));
  carbon_->Kill();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 1; i <= 50; ++i) {
    auto reply = dev->Request("$SCW/twins/me/current/patch", R"({"data":{"during":)" + std::to_string(i) + "}}");
    ASSERT_TRUE(reply.has_value());
    ASSERT_EQ(reply->topic, "$SCW/twins/me/current/patch/response/success");
  }
  // 50 requests with Graphite unreachable: nothing waits on it (each would cost a connect timeout).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  std::string error;
  ASSERT_TRUE(carbon_->Start(&error)) << error;
  const int64_t t = UnixNow();
  ASSERT_TRUE(dev->Request("$SCW/twins/me/current/patch", R"({"data":{"after":7}})"));
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.current.after;document=current;json_path=after;twin_id=dev1", t,
                                  UnixNow() + 30, 7.0, std::chrono::seconds(40)),
            7.0);
  broker_->Stop();
  EXPECT_NE(broker_->log().find("graphite: "), std::string::npos) << broker_->log();
}

}  // namespace
}  // namespace twins::test
