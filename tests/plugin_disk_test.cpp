// The disk cannot be filled by devices: the free-space reserve, the twin limit and the
// recovery after a full disk, against the real broker with real MQTT clients. The disk tests
// mount a real tmpfs on the database folder (root only; skipped otherwise).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/support/broker.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/small_disk.hpp"

namespace twins::test {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<MqttClient> Device(const Broker& broker, const std::string& id) {
  auto client = std::make_unique<MqttClient>(id, broker.port());
  EXPECT_TRUE(client->connected());
  EXPECT_TRUE(client->Subscribe("$SCW/twins/me/#"));
  return client;
}

// Topic and payload of the reply to one request, as "topic payload".
std::string Ask(MqttClient& client, const std::string& topic, const std::string& payload) {
  auto reply = client.Request(topic, payload);
  return reply ? reply->topic + " " + reply->payload : "<no reply>";
}

bool Succeeded(const std::string& reply) { return reply.find("/response/success ") != std::string::npos; }

// Asks until the reply contains `wanted` or `limit` passes; the time it took.
std::chrono::milliseconds AskUntil(MqttClient& client, const std::string& topic, const std::string& payload,
                                   const std::string& wanted, std::chrono::milliseconds limit, std::string* last) {
  const auto start = Clock::now();
  while ((*last = Ask(client, topic, payload)).find(wanted) == std::string::npos && Clock::now() - start < limit) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// Asks until the reply succeeds or `limit` passes; the time it took.
std::chrono::milliseconds AskUntilSuccess(MqttClient& client, const std::string& topic, const std::string& payload,
                                          std::chrono::milliseconds limit, std::string* last) {
  return AskUntil(client, topic, payload, "/response/success ", limit, last);
}

// A full disk: the write the database cannot take is refused with a clear error, later writes
// at once, reads and the connection go on; once space is freed writes are accepted again,
// with no restart.
TEST(PluginDiskTest, AFullDiskRefusesWritesAndTheyResumeOnceSpaceIsFreed) {
  Broker broker("plugin_opt_cache_mb 1\nplugin_opt_min_free_mb 0\nplugin_opt_max_requests_per_second 0\n");
  SmallDisk disk(broker.db_path(), 2);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  ASSERT_TRUE(broker.Start()) << broker.log();
  auto dev = Device(broker, "dev1");
  ASSERT_TRUE(Succeeded(Ask(*dev, "$SCW/twins/me/kept/put", R"({"data":{"a":1}})")));

  disk.Fill();
  const std::string filler(16 * 1024, 'x');
  std::string failed;
  for (int i = 0; i < 200 && failed.empty(); ++i) {
    std::string reply = Ask(*dev, "$SCW/twins/me/big/put",
                            R"({"data":{"n":)" + std::to_string(i) + R"(,"s":")" + filler + R"("}})");
    ASSERT_NE(reply, "<no reply>") << "no reply to write " << i << "\n" << broker.log();
    if (!Succeeded(reply)) failed = reply;
  }
  ASSERT_FALSE(failed.empty()) << "the disk never filled";
  const std::string full = R"({"error":"the database's disk is full: writes are refused until space is freed",)"
                           R"("resource":"disk_space","min_free_mb":0,"free_mb":)";
  EXPECT_EQ(failed.rfind("$SCW/twins/me/big/put/response/error " + full, 0), 0u) << failed;

  const auto t0 = Clock::now();
  std::string refused = Ask(*dev, "$SCW/twins/me/kept/patch", R"({"data":{"a":2}})");
  const auto refused_in = Clock::now() - t0;
  EXPECT_EQ(refused.rfind("$SCW/twins/me/kept/patch/response/error " + full, 0), 0u) << refused;
  EXPECT_LT(refused_in, std::chrono::milliseconds(200));  // a loop pass, not a disk wait
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/kept/get", ""),
            R"($SCW/twins/me/kept/get/response/success {"version":1,"data":{"a":1}})");
  EXPECT_TRUE(dev->connected());

  disk.Free();
  std::string accepted;
  const auto took = AskUntilSuccess(*dev, "$SCW/twins/me/kept/patch", R"({"data":{"a":3}})",
                                    std::chrono::milliseconds(3000), &accepted);
  EXPECT_EQ(accepted, R"($SCW/twins/me/kept/patch/response/success {"version":2,"data":{"a":3}})") << broker.log();
  EXPECT_LT(took, std::chrono::milliseconds(1000));
  std::printf("refused write answered in %lld us; writes accepted again %lld ms after space was freed\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(refused_in).count()),
              static_cast<long long>(took.count()));
  // Written at a tick, which may come after the reply (Mosquitto 2.1 replies at once).
  EXPECT_TRUE(broker.WaitForLog("twins: the database cannot be written (IO error: No space left on device"))
      << broker.log();
  EXPECT_TRUE(broker.WaitForLog("twins: the database accepts writes again")) << broker.log();

  // And it is all on disk: a restart reads it.
  dev.reset();
  broker.Stop();
  EXPECT_TRUE(broker.exited_cleanly()) << broker.log();
  ASSERT_TRUE(broker.Start()) << broker.log();
  dev = Device(broker, "dev1");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/kept/get", ""),
            R"($SCW/twins/me/kept/get/response/success {"version":2,"data":{"a":3}})");
  broker.Stop();
  EXPECT_TRUE(broker.exited_cleanly()) << broker.log();
}

// Below plugin_opt_min_free_mb: puts and patches are refused, reads and deletions work, and
// writes come back by themselves once there is room again.
TEST(PluginDiskTest, BelowTheReserveWritesAreRefusedAndResumeByThemselves) {
  Broker broker("plugin_opt_cache_mb 1\nplugin_opt_min_free_mb 8\n");
  SmallDisk disk(broker.db_path(), 16);  // RocksDB takes 4 MiB of it ahead for its log
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  ASSERT_TRUE(broker.Start()) << broker.log();
  auto dev = Device(broker, "dev1");
  ASSERT_TRUE(Succeeded(Ask(*dev, "$SCW/twins/me/a/put", R"({"data":{"a":1}})")));
  ASSERT_TRUE(Succeeded(Ask(*dev, "$SCW/twins/me/b/put", R"({"data":{"b":1}})")));

  disk.Fill(4 << 20);
  // The free space is read every 100 ms: another twin writes until it sees the reserve.
  auto probe = Device(broker, "probe");
  std::string probed;
  AskUntil(*probe, "$SCW/twins/me/p/put", R"({"data":{}})", "/response/error ", std::chrono::milliseconds(3000),
           &probed);
  ASSERT_NE(probed.find("/response/error "), std::string::npos) << probed;
  const std::string low =
      R"({"error":"not enough free disk space for the database: writes that add data are )"
      R"(refused while less than 8 MiB are free","resource":"disk_space","min_free_mb":8,"free_mb":4})";
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/a/patch", R"({"data":{"a":2}})"), "$SCW/twins/me/a/patch/response/error " + low);
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/c/put", R"({"data":{}})"), "$SCW/twins/me/c/put/response/error " + low);
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/a/get", ""),
            R"($SCW/twins/me/a/get/response/success {"version":1,"data":{"a":1}})");
  EXPECT_EQ(Ask(*dev, "$SCW/twins/me/b/delete", ""),
            R"($SCW/twins/me/b/delete/response/success {"version":1,"data":{"b":1}})");
  EXPECT_TRUE(broker.WaitForLog("twins: disk space low (4 MiB free, reserve 8 MiB)")) << broker.log();

  disk.Free();
  std::string accepted;
  const auto took = AskUntilSuccess(*dev, "$SCW/twins/me/a/patch", R"({"data":{"a":3}})",
                                    std::chrono::milliseconds(2000), &accepted);
  EXPECT_EQ(accepted, R"($SCW/twins/me/a/patch/response/success {"version":2,"data":{"a":3}})");
  EXPECT_LT(took, std::chrono::milliseconds(500));
  broker.Stop();
  EXPECT_TRUE(broker.exited_cleanly()) << broker.log();
}

TEST(PluginDiskTest, ANewTwinBeyondMaxTwinsIsRefusedAndTheCountSurvivesRestarts) {
  Broker broker("plugin_opt_max_twins 1\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  auto dev1 = Device(broker, "dev1");
  auto dev2 = Device(broker, "dev2");
  ASSERT_TRUE(Succeeded(Ask(*dev1, "$SCW/twins/me/d/put", R"({"data":{}})")));
  const std::string quota =
      R"({"error":"quota exceeded: twins is limited to 1","resource":"twins","quota":1,"current":1})";
  EXPECT_EQ(Ask(*dev2, "$SCW/twins/me/d/put", R"({"data":{}})"), "$SCW/twins/me/d/put/response/error " + quota);
  EXPECT_TRUE(Succeeded(Ask(*dev1, "$SCW/twins/me/other/put", R"({"data":{}})")));  // its own twin grows

  dev1.reset();
  dev2.reset();
  broker.Stop();
  ASSERT_TRUE(broker.Start()) << broker.log();
  EXPECT_NE(broker.log().find("twins: 1 twins of at most 1"), std::string::npos) << broker.log();
  dev1 = Device(broker, "dev1");
  dev2 = Device(broker, "dev2");
  EXPECT_EQ(Ask(*dev2, "$SCW/twins/me/d/patch", R"({"data":{}})"), "$SCW/twins/me/d/patch/response/error " + quota);
  ASSERT_TRUE(Succeeded(Ask(*dev1, "$SCW/twins/me/d/delete", "")));
  ASSERT_TRUE(Succeeded(Ask(*dev1, "$SCW/twins/me/other/delete", "")));
  EXPECT_TRUE(Succeeded(Ask(*dev2, "$SCW/twins/me/d/put", R"({"data":{}})")));
  broker.Stop();
  EXPECT_TRUE(broker.exited_cleanly()) << broker.log();
}

struct BadOption {
  std::string line;
  std::string error;
};

class PluginDiskOptionsTest : public testing::TestWithParam<BadOption> {};

TEST_P(PluginDiskOptionsTest, BadValueStopsTheBrokerNamingTheOption) {
  Broker broker(GetParam().line + "\n");
  EXPECT_FALSE(broker.Start());
  EXPECT_NE(broker.log().find(GetParam().error), std::string::npos) << broker.log();
}

INSTANTIATE_TEST_SUITE_P(
    MinFreeAndMaxTwins, PluginDiskOptionsTest,
    testing::Values(BadOption{"plugin_opt_min_free_mb -1", "plugin_opt_min_free_mb: '-1' is not a whole number"},
                    BadOption{"plugin_opt_min_free_mb lots", "plugin_opt_min_free_mb: 'lots' is not a whole number"},
                    BadOption{"plugin_opt_min_free_mb 1.5", "plugin_opt_min_free_mb: '1.5' is not a whole number"},
                    BadOption{"plugin_opt_min_free_mb 1073741825",
                              "plugin_opt_min_free_mb: 1073741825 is out of range 0..1073741824"},
                    BadOption{"plugin_opt_min_free_mb 99999999999999999999999",
                              "plugin_opt_min_free_mb: 99999999999999999999999 is out of range 0..1073741824"},
                    BadOption{"plugin_opt_max_twins -5", "plugin_opt_max_twins: '-5' is not a whole number"},
                    BadOption{"plugin_opt_max_twins many", "plugin_opt_max_twins: 'many' is not a whole number"},
                    BadOption{"plugin_opt_max_twins 1000000001",
                              "plugin_opt_max_twins: 1000000001 is out of range 0..1000000000"},
                    BadOption{"plugin_opt_max_twins 99999999999999999999999",
                              "plugin_opt_max_twins: 99999999999999999999999 is out of range 0..1000000000"}),
    [](const auto& info) { return "Case" + std::to_string(info.index); });

TEST(PluginDiskOptionsStartTest, DefaultsAreLoggedAtStart) {
  Broker broker;
  ASSERT_TRUE(broker.Start()) << broker.log();
  EXPECT_NE(broker.log().find("twins: disk: unlimited twins, writes that add data refused below 256 MiB free"),
            std::string::npos)
      << broker.log();
}

}  // namespace
}  // namespace twins::test
