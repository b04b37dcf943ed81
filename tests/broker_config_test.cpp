// Reading which access checks the broker runs from its configuration (plugin/broker_config.hpp).
#include "plugin/broker_config.hpp"
#include "plugin/broker_wake.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

class BrokerConfigTest : public testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.sub(name)) << text;
    return dir_.sub(name);
  }
  std::string Own() { return Write("mosquitto_twins.so", ""); }

  test::TempDir dir_;
};

TEST_F(BrokerConfigTest, PluginAloneLeavesNoOtherChecker) {
  const std::string own = Own();
  auto setup = ReadAccessSetup({Write("m.conf", "listener 1883\n# acl_file /x\nplugin " + own + "\n")}, own);
  ASSERT_TRUE(setup.ok()) << setup.status().message();
  EXPECT_FALSE(setup->others_decide);
  EXPECT_TRUE(setup->plugin_before_us.empty());
}

TEST_F(BrokerConfigTest, AclFileMakesOthersDecide) {
  const std::string own = Own();
  auto setup = ReadAccessSetup({Write("m.conf", "plugin " + own + "\n  acl_file   /etc/mosquitto/acl  \n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_TRUE(setup->others_decide);
  EXPECT_EQ(setup->acl_file, "/etc/mosquitto/acl");
}

TEST_F(BrokerConfigTest, AnotherPluginAfterUsDecidesAndOneBeforeUsIsNamed) {
  const std::string own = Own();
  auto after = ReadAccessSetup({Write("a.conf", "plugin " + own + "\nplugin /usr/lib/dynsec.so\n")}, own);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->others_decide);
  EXPECT_TRUE(after->plugin_before_us.empty());
  auto before = ReadAccessSetup({Write("b.conf", "auth_plugin /usr/lib/go-auth.so\nplugin " + own + "\n")}, own);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->plugin_before_us, "/usr/lib/go-auth.so");
}

TEST_F(BrokerConfigTest, OurPluginIsRecognisedThroughAnotherPath) {
  const std::string own = Own();
  ASSERT_EQ(symlink(own.c_str(), dir_.sub("link.so").c_str()), 0);
  auto setup = ReadAccessSetup({Write("m.conf", "plugin " + dir_.sub("link.so") + "\n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_FALSE(setup->others_decide);
}

TEST_F(BrokerConfigTest, SysIntervalIsReadWithMosquittosDefault) {
  const std::string own = Own();
  auto none = ReadAccessSetup({Write("a.conf", "plugin " + own + "\n")}, own);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->sys_interval, 10);
  auto set = ReadAccessSetup({Write("b.conf", "sys_interval 0\nplugin " + own + "\nsys_interval 3\n")}, own);
  ASSERT_TRUE(set.ok());
  EXPECT_EQ(set->sys_interval, 3);  // the last line wins, as in mosquitto
  auto bad = ReadAccessSetup({Write("c.conf", "sys_interval soon\n")}, own);
  ASSERT_TRUE(bad.ok());  // mosquitto itself refuses to start on it
  EXPECT_EQ(bad->sys_interval, 10);
}

TEST_F(BrokerConfigTest, IncludeDirFilesAreReadInNameOrder) {
  const std::string own = Own();
  ASSERT_EQ(mkdir(dir_.sub("conf.d").c_str(), 0755), 0);
  Write("conf.d/20-twins.conf", "plugin " + own + "\n");
  Write("conf.d/10-dynsec.conf", "plugin /usr/lib/dynsec.so\n");
  Write("conf.d/notes.txt", "acl_file /ignored\n");
  auto setup = ReadAccessSetup({Write("m.conf", "include_dir " + dir_.sub("conf.d") + "\n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_TRUE(setup->others_decide);
  EXPECT_EQ(setup->plugin_before_us, "/usr/lib/dynsec.so");
  EXPECT_TRUE(setup->acl_file.empty());
}

TEST_F(BrokerConfigTest, UnreadableFilesAreErrorsNamingThem) {
  auto missing = ReadAccessSetup({dir_.sub("absent.conf")}, Own());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("absent.conf"), std::string::npos);
  auto bad_dir = ReadAccessSetup({Write("m.conf", "include_dir " + dir_.sub("nope") + "\n")}, Own());
  ASSERT_FALSE(bad_dir.ok());
  EXPECT_NE(bad_dir.status().message().find("nope"), std::string::npos);
}

TEST_F(BrokerConfigTest, TheTestProcessHasNoConfigArgument) { EXPECT_TRUE(RunningBrokerConfigPaths().empty()); }

TEST_F(BrokerConfigTest, EveryConfigFileIsReadAndTheFirstDecidingLineIsNamed) {
  const std::string own = Own();
  auto setup = ReadAccessSetup({Write("a.conf", "plugin " + own + "\n"), Write("b.conf", "acl_file /etc/acl\n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_TRUE(setup->others_decide);
  EXPECT_EQ(setup->decided_by, "acl_file /etc/acl");
}

TEST_F(BrokerConfigTest, IncludeDirIsFollowedInMainFilesOnly) {
  const std::string own = Own();
  ASSERT_EQ(mkdir(dir_.sub("d1").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(dir_.sub("d2").c_str(), 0755), 0);
  Write("d1/a.conf", "include_dir " + dir_.sub("d2") + "\n");
  Write("d2/b.conf", "acl_file /ignored-by-mosquitto\n");
  auto setup = ReadAccessSetup({Write("m.conf", "plugin " + own + "\ninclude_dir " + dir_.sub("d1") + "\n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_FALSE(setup->others_decide);
}

TEST_F(BrokerConfigTest, IncludedFilesAreSortedIgnoringCase) {
  const std::string own = Own();
  ASSERT_EQ(mkdir(dir_.sub("conf.d").c_str(), 0755), 0);
  Write("conf.d/a-first.conf", "plugin /usr/lib/a.so\n");
  Write("conf.d/B-second.conf", "plugin " + own + "\n");
  auto setup = ReadAccessSetup({Write("m.conf", "include_dir " + dir_.sub("conf.d") + "\n")}, own);
  ASSERT_TRUE(setup.ok());
  EXPECT_EQ(setup->plugin_before_us, "/usr/lib/a.so");  // byte order would put B first
}

TEST_F(BrokerConfigTest, Mosquitto21PluginLoadLinesAreRecognised) {
  const std::string own = Own();
  auto ours = ReadAccessSetup({Write("a.conf", "plugin_load twins " + own + "\n")}, own);
  ASSERT_TRUE(ours.ok());
  EXPECT_FALSE(ours->others_decide);
  auto other = ReadAccessSetup(
      {Write("b.conf", "plugin_load dynsec /usr/lib/dynsec.so\nplugin_load twins " + own + "\n")}, own);
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->others_decide);
  EXPECT_EQ(other->plugin_before_us, "/usr/lib/dynsec.so");
}

// The broker wake's view (plugin/broker_wake.hpp): which listener it uses, and how its
// basic-auth callback leaves other clients.
TEST_F(BrokerConfigTest, WakeUsesTheFirstPlainListener) {
  const std::string own = Own();
  auto setup = ReadBrokerSetup({Write("m.conf",
                                      "listener 8883\ncertfile /c.pem\nlistener 9001\nprotocol websockets\n"
                                      "listener 1885 10.0.0.1\nmount_point x/\nlistener 1884\nsocket_domain ipv6\n"
                                      "listener 1883 127.0.0.2\nplugin " +
                                          own + "\n")},
                               own);
  ASSERT_TRUE(setup.ok()) << setup.status().message();
  ASSERT_EQ(setup->listeners.size(), 5u);
  auto target = ChooseWakeTarget(*setup);
  ASSERT_TRUE(target.ok());
  EXPECT_EQ(target->Describe(), "[::1]:1884");
  EXPECT_FALSE(setup->other_plugins);
  EXPECT_FALSE(setup->allow_anonymous);  // a listener is configured: mosquitto's default is false
}

TEST_F(BrokerConfigTest, WakeFindsNoListenerInATlsOnlyBroker) {
  auto setup = ReadBrokerSetup({Write("m.conf", "listener 8883\ncertfile /c.pem\nlistener 8884\npsk_hint h\n")}, Own());
  ASSERT_TRUE(setup.ok());
  auto target = ChooseWakeTarget(*setup);
  ASSERT_FALSE(target.ok());
  EXPECT_EQ(target.status().message(), "no plain MQTT listener (listener 8883: TLS; listener 8884: TLS)");
}

TEST_F(BrokerConfigTest, WakeUsesTheDefaultListenerUnixSocketsAndTheLoopbackOne) {
  auto port = ReadBrokerSetup({Write("p.conf", "listener 8883\ncertfile /c\nport 1999\nbind_address 0.0.0.0\n")},
                              Own());
  ASSERT_TRUE(port.ok());
  EXPECT_EQ(ChooseWakeTarget(*port)->Describe(), "127.0.0.1:1999");
  auto unix_socket = ReadBrokerSetup({Write("u.conf", "listener 0 /run/mosquitto.sock\n")}, Own());
  ASSERT_TRUE(unix_socket.ok());
  EXPECT_EQ(ChooseWakeTarget(*unix_socket)->Describe(), "/run/mosquitto.sock");
  auto none = ReadBrokerSetup({Write("n.conf", "log_type all\n")}, Own());
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(ChooseWakeTarget(*none)->Describe(), "localhost:1883");
  EXPECT_TRUE(none->allow_anonymous);
}

TEST_F(BrokerConfigTest, WakeRefusesPerListenerSettings) {
  auto setup = ReadBrokerSetup({Write("m.conf", "per_listener_settings true\nlistener 1883\n")}, Own());
  ASSERT_TRUE(setup.ok());
  EXPECT_FALSE(ChooseWakeTarget(*setup).ok());
}

TEST_F(BrokerConfigTest, WakeAuthLeavesOtherClientsAsTheBrokerWould) {
  const std::string own = Own();
  auto read = [&](const std::string& text) { return *ReadBrokerSetup({Write("a.conf", text)}, own); };
  EXPECT_EQ(WakeAuthFor(read("listener 1883\nallow_anonymous true\n"), true), OthersAuth::kIgnore);
  EXPECT_EQ(WakeAuthFor(read("listener 1883\nallow_anonymous true\n"), false), OthersAuth::kAllow);
  EXPECT_EQ(WakeAuthFor(read("listener 1883\n"), false), OthersAuth::kDefer);
  EXPECT_EQ(WakeAuthFor(read("listener 1883\nallow_anonymous true\npassword_file /p\n"), false), OthersAuth::kDefer);
  EXPECT_EQ(WakeAuthFor(read("allow_anonymous true\nplugin /x.so\nplugin " + own + "\n"), false), OthersAuth::kDefer);
}

TEST(WakeAddressTest, HostPortSocketPathAndOffAreRead) {
  WakeTarget target;
  bool off = true;
  ASSERT_TRUE(ParseWakeAddress("127.0.0.1:1884", &target, &off).ok());
  EXPECT_FALSE(off);
  EXPECT_EQ(target.Describe(), "127.0.0.1:1884");
  ASSERT_TRUE(ParseWakeAddress("[::1]:1883", &target, &off).ok());
  EXPECT_EQ(target.host, "::1");
  ASSERT_TRUE(ParseWakeAddress("/run/m.sock", &target, &off).ok());
  EXPECT_EQ(target.unix_path, "/run/m.sock");
  ASSERT_TRUE(ParseWakeAddress("off", &target, &off).ok());
  EXPECT_TRUE(off);
}

TEST(WakeAddressTest, BadAddressesAreNamed) {
  for (const std::string bad : {"", "localhost", ":1883", "::1:1883", "h:0", "h:65536", "h:12x", "h:123456", "[]:1"}) {
    WakeTarget target;
    bool off = false;
    Status s = ParseWakeAddress(bad, &target, &off);
    EXPECT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.message().rfind("plugin_opt_wake_address: '" + bad + "'", 0), 0u) << s.message();
  }
}

TEST(WakeCredentialsTest, OnlyTheSecretMakesTheWake) {
  BrokerWake wake({"127.0.0.1", 1, ""}, nullptr, [](bool) {});
  EXPECT_EQ(wake.Check("device", "alice", "pw"), WakeCredentials::kOther);
  EXPECT_EQ(wake.Check("device", nullptr, nullptr), WakeCredentials::kOther);
  EXPECT_EQ(wake.Check("mosquitto-twins-wake", nullptr, nullptr), WakeCredentials::kImpostor);
  EXPECT_EQ(wake.Check("device", "mosquitto-twins-wake", "guess"), WakeCredentials::kImpostor);
  EXPECT_EQ(wake.Check("mosquitto-twins-wake", "mosquitto-twins-wake", ""), WakeCredentials::kImpostor);
}

}  // namespace
}  // namespace twins
