// The MQTT request handler (plugin/mqtt_requests.hpp) without a broker: the replies it builds,
// here those of internal errors, which tell the device a log id and nothing of the failure.
#include "plugin/mqtt_requests.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <string>

#include "tests/support/broken_store.hpp"

namespace twins {
namespace {

class MqttRequestsTest : public testing::Test {
 protected:
  void Open(std::unique_ptr<DocumentStore> store) { engine_ = std::make_unique<Engine>(std::move(store), Limits()); }

  Reply Ask(const std::string& topic, const std::string& payload) {
    TwinTopic parsed;
    EXPECT_EQ(ClassifyTopic(topic, &parsed), TopicKind::kMethod);
    return HandleTwinRequest(*engine_, "dev1", topic, parsed, payload, Durability::kBeforeReturn, Logger());
  }

  LogFn Logger() {
    return [this](LogLevel level, const std::string& line) {
      log_ += (level == LogLevel::kError ? "E " : "- ") + line + "\n";
    };
  }

  // The log id of an internal-error reply, "" if the reply is not one.
  static std::string InternalErrorId(const Reply& reply) {
    static const std::regex kPayload(R"j(\{"error":"internal error \(log id ([0-9a-f]{8})\)"\})j");
    std::smatch match;
    if (reply.success || reply.code != Code::kInternal) return "";
    return std::regex_match(reply.payload, match, kPayload) ? match[1].str() : "";
  }

  std::unique_ptr<Engine> engine_;
  std::string log_;
};

TEST_F(MqttRequestsTest, StoreFailureIsAnsweredWithALogIdAndTheDetailIsLogged) {
  Open(std::make_unique<test::BrokenStore>());
  const Reply get = Ask("$SCW/twins/me/d/get", "");
  EXPECT_EQ(get.topic, "$SCW/twins/me/d/get/response/error");
  const std::string get_id = InternalErrorId(get);
  ASSERT_NE(get_id, "") << get.payload;
  const Reply put = Ask("$SCW/twins/me/d/put", R"({"data":{}})");
  const std::string put_id = InternalErrorId(put);
  ASSERT_NE(put_id, "") << put.payload;
  EXPECT_NE(get_id, put_id);
  EXPECT_EQ(put.payload.find("disk on fire"), std::string::npos) << put.payload;
  EXPECT_NE(log_.find("E MQTT: internal error on $SCW/twins/me/d/get: IO error: disk on fire (log id " + get_id + ")"),
            std::string::npos)
      << log_;
  EXPECT_NE(log_.find("E MQTT: internal error on $SCW/twins/me/d/put: IO error: disk on fire (log id " + put_id + ")"),
            std::string::npos)
      << log_;
}

TEST_F(MqttRequestsTest, ExceptionIsAnsweredWithALogIdAndTheDetailIsLogged) {
  Open(std::make_unique<test::ThrowingStore>());
  const Reply get = Ask("$SCW/twins/me/d/get", "");
  const std::string id = InternalErrorId(get);
  ASSERT_NE(id, "") << get.payload;
  EXPECT_EQ(get.payload.find("exploded"), std::string::npos) << get.payload;
  EXPECT_NE(
      log_.find("MQTT: internal error on $SCW/twins/me/d/get: request failed: store exploded (log id " + id + ")"),
      std::string::npos)
      << log_;
}

// A failed group commit turns the held successes into errors of the same kind.
TEST_F(MqttRequestsTest, FailedSyncIsAnsweredWithALogId) {
  const Reply reply = ErrorReply("$SCW/twins/me/d/put", Status::Internal("IO error: log write failed"), Logger());
  EXPECT_EQ(reply.topic, "$SCW/twins/me/d/put/response/error");
  const std::string id = InternalErrorId(reply);
  ASSERT_NE(id, "") << reply.payload;
  EXPECT_NE(log_.find("IO error: log write failed (log id " + id + ")"), std::string::npos) << log_;
}

// Other errors are the device's to fix or to wait out: their message is the reply, nothing is logged.
TEST_F(MqttRequestsTest, InvalidInputIsAnsweredInFullAndNotLogged) {
  Open(std::make_unique<test::BrokenStore>());
  const Reply reply = Ask("$SCW/twins/me/d/put", "{");
  EXPECT_EQ(reply.code, Code::kInvalidArgument);
  EXPECT_EQ(reply.payload.rfind(R"({"error":")", 0), 0u) << reply.payload;
  EXPECT_EQ(reply.payload.find("log id"), std::string::npos) << reply.payload;
  EXPECT_EQ(log_, "");
}

}  // namespace
}  // namespace twins
