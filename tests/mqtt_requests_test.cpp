// The in-band API without a broker: the topic grammar, who may ask, and the replies of an
// engine over a temporary RocksDB database (or a failing store, for internal errors).
#include "plugin/mqtt_requests.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <string>

#include "store/document_store.hpp"
#include "tests/support/broken_store.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

// A request topic's levels as "twin|document|method", or "<not a request>".
std::string Levels(std::string_view topic) {
  TwinTopic parsed;
  if (ClassifyTopic(topic, &parsed) != TopicKind::kMethod) return "<not a request>";
  return std::string(parsed.twin) + "|" + std::string(parsed.document) + "|" + std::string(parsed.method);
}

TEST(ClassifyTopicTest, MethodTopicIsSplitIntoTwinDocumentAndMethod) {
  EXPECT_EQ(Levels("$SCW/twins/dev1/desired/patch"), "dev1|desired|patch");
  EXPECT_EQ(Levels("$SCW/twins/me/_config/get"), "me|_config|get");
}

TEST(ClassifyTopicTest, EmptyLevelsStillMakeAMethodTopicForTheEngineToRefuse) {
  EXPECT_EQ(Levels("$SCW/twins/me//get"), "me||get");
  EXPECT_EQ(Levels("$SCW/twins///"), "||");
}

// The kind of a topic that is no request: `parsed` is left as it was.
TopicKind KindOfNonRequest(std::string_view topic) {
  TwinTopic parsed{"untouched", "untouched", "untouched"};
  const TopicKind kind = ClassifyTopic(topic, &parsed);
  EXPECT_EQ(parsed.twin, "untouched") << topic;
  return kind;
}

TEST(ClassifyTopicTest, TopicsOutsideThePrefixAreNotOurs) {
  for (const char* topic : {"sensors/dev1/temp", "$SCW/twin/dev1/desired/get", "$scw/twins/dev1/desired/get", ""}) {
    EXPECT_EQ(KindOfNonRequest(topic), TopicKind::kNotTwin) << topic;
  }
}

TEST(ClassifyTopicTest, OtherDepthsUnderThePrefixAreDroppedNotAnswered) {
  // A reply topic is deeper than a request: never taken for a new request.
  for (const char* topic :
       {"$SCW/twins/", "$SCW/twins/dev1", "$SCW/twins/dev1/desired", "$SCW/twins/dev1/desired/get/response/success"}) {
    EXPECT_EQ(KindOfNonRequest(topic), TopicKind::kOtherTwin) << topic;
  }
}

TEST(AdmitRequestTest, MeAndTheOwnTwinIdActOnTheRequestersTwin) {
  RateLimiter limiter(0, 0);
  const Requester requester{std::string_view("dev1"), {}};
  auto me = AdmitRequest(limiter, requester, TwinTopic{"me", "desired", "get"});
  ASSERT_TRUE(me.ok()) << me.status().message();
  EXPECT_EQ(me.value(), "dev1");
  auto own = AdmitRequest(limiter, requester, TwinTopic{"dev1", "desired", "get"});
  ASSERT_TRUE(own.ok()) << own.status().message();
  EXPECT_EQ(own.value(), "dev1");
}

TEST(AdmitRequestTest, AnotherDevicesTwinIsRefused) {
  RateLimiter limiter(0, 0);
  auto other = AdmitRequest(limiter, Requester{std::string_view("dev1"), {}}, TwinTopic{"dev2", "desired", "get"});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(other.status().field(), "twin_id");
}

TEST(AdmitRequestTest, ARequesterWithoutIdentityGetsTheReasonItHasNone) {
  RateLimiter limiter(0, 0);
  auto none = AdmitRequest(limiter, Requester{std::nullopt, "no username"}, TwinTopic{"me", "desired", "get"});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(none.status().field(), "twin_id");
  EXPECT_EQ(none.status().message(), "no username");
}

TEST(AdmitRequestTest, RequestsBeyondTheBurstAreTooManyAndOtherTwinsStillPass) {
  RateLimiter limiter(1, 2);
  const TwinTopic get{"me", "desired", "get"};
  const Requester dev1{std::string_view("dev1"), {}};
  EXPECT_TRUE(AdmitRequest(limiter, dev1, get).ok());
  EXPECT_TRUE(AdmitRequest(limiter, dev1, get).ok());
  auto third = AdmitRequest(limiter, dev1, get);
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Code::kTooManyRequests);
  EXPECT_GE(third.status().retry_after_ms(), 1u);
  EXPECT_TRUE(AdmitRequest(limiter, Requester{std::string_view("dev2"), {}}, get).ok());
}

class HandleTwinRequestTest : public testing::Test {
 protected:
  void SetUp() override { Open(Limits()); }

  void Open(Limits limits) {
    engine_.reset();
    auto store = OpenRocksDbStore(dir_.sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    engine_ = std::make_unique<Engine>(std::move(store).value(), limits);
  }

  // The reply to `payload` on $SCW/twins/dev1/<document>/<method>.
  Reply Handle(const std::string& document, const std::string& method, const std::string& payload) {
    topic_ = "$SCW/twins/dev1/" + document + "/" + method;
    TwinTopic parsed;
    EXPECT_EQ(ClassifyTopic(topic_, &parsed), TopicKind::kMethod);
    return HandleTwinRequest(*engine_, "dev1", topic_, parsed, payload, {Durability::kBeforeReturn, "dev1", 1}, {});
  }

  test::TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::string topic_;
};

TEST_F(HandleTwinRequestTest, PutThenGetReplyOnTheSuccessTopicWithTheDocument) {
  Reply put = Handle("desired", "put", R"({"data":{"on":true}})");
  EXPECT_TRUE(put.success);
  EXPECT_EQ(put.topic, "$SCW/twins/dev1/desired/put/response/success");
  EXPECT_EQ(put.payload, R"({"version":1,"data":{"on":true}})");
  EXPECT_EQ(put.version, 1u);
  EXPECT_EQ(put.code, Code::kOk);

  Reply get = Handle("desired", "get", "");
  EXPECT_TRUE(get.success);
  EXPECT_EQ(get.topic, "$SCW/twins/dev1/desired/get/response/success");
  EXPECT_EQ(get.payload, R"({"version":1,"data":{"on":true}})");
}

TEST_F(HandleTwinRequestTest, GetOfAMissingDocumentRepliesNotFoundOnTheErrorTopic) {
  Reply get = Handle("desired", "get", "");
  EXPECT_FALSE(get.success);
  EXPECT_EQ(get.topic, "$SCW/twins/dev1/desired/get/response/error");
  EXPECT_EQ(get.code, Code::kNotFound);
  EXPECT_EQ(get.payload.rfind("{\"error\":", 0), 0u) << get.payload;
}

TEST_F(HandleTwinRequestTest, PatchMergesAndDeleteRemoves) {
  ASSERT_TRUE(Handle("desired", "put", R"({"data":{"a":1,"b":2}})").success);
  Reply patch = Handle("desired", "patch", R"({"data":{"b":null,"c":3}})");
  EXPECT_TRUE(patch.success);
  EXPECT_EQ(patch.payload, R"({"version":2,"data":{"a":1,"c":3}})");
  Reply remove = Handle("desired", "delete", "");
  EXPECT_TRUE(remove.success) << remove.payload;
  EXPECT_EQ(remove.topic, "$SCW/twins/dev1/desired/delete/response/success");
  EXPECT_EQ(Handle("desired", "get", "").code, Code::kNotFound);
}

TEST_F(HandleTwinRequestTest, UnknownMethodIsAnInvalidArgumentNamingTheMethod) {
  Reply reply = Handle("desired", "upsert", R"({"data":{}})");
  EXPECT_FALSE(reply.success);
  EXPECT_EQ(reply.topic, "$SCW/twins/dev1/desired/upsert/response/error");
  EXPECT_EQ(reply.code, Code::kInvalidArgument);
  EXPECT_EQ(
      reply.payload,
      R"j({"error":"unknown method 'upsert' (known: get, put, patch, delete, watch, unwatch)","argument":"method"})j");
}

TEST_F(HandleTwinRequestTest, MalformedBodyIsAnInvalidArgumentAndStoresNothing) {
  Reply put = Handle("desired", "put", "{not json");
  EXPECT_FALSE(put.success);
  EXPECT_EQ(put.code, Code::kInvalidArgument);
  EXPECT_NE(put.payload.find("\"argument\":"), std::string::npos) << put.payload;
  EXPECT_EQ(Handle("desired", "get", "").code, Code::kNotFound);
}

TEST_F(HandleTwinRequestTest, VersionConflictNamesTheTwinDocumentAndBothVersions) {
  ASSERT_TRUE(Handle("desired", "put", R"({"data":{"a":1}})").success);
  Reply put = Handle("desired", "put", R"({"version":5,"data":{"a":2}})");
  EXPECT_FALSE(put.success);
  EXPECT_EQ(put.code, Code::kVersionMismatch);
  EXPECT_EQ(put.payload, R"({"error":"document version mismatch","twin_id":"dev1","document_name":"desired",)"
                         R"("expected_version":5,"actual_version":1})");
}

TEST_F(HandleTwinRequestTest, QuotaErrorNamesItsResourceForTheMetrics) {
  Limits limits;
  limits.max_documents = 1;
  Open(limits);
  ASSERT_TRUE(Handle("first", "put", R"({"data":{}})").success);
  Reply second = Handle("second", "put", R"({"data":{}})");
  EXPECT_FALSE(second.success);
  EXPECT_EQ(second.code, Code::kQuotaExceeded);
  EXPECT_FALSE(second.quota.empty());
  EXPECT_NE(second.payload.find("\"resource\":\"" + second.quota + "\""), std::string::npos) << second.payload;
  EXPECT_NE(second.payload.find("\"quota\":1"), std::string::npos) << second.payload;
}

TEST(ErrorReplyTest, TooManyRequestsSaysWhenToRetryOnTheErrorTopic) {
  Reply reply = ErrorReply("$SCW/twins/me/desired/get", Status::TooManyRequests(250), {});
  EXPECT_FALSE(reply.success);
  EXPECT_EQ(reply.topic, "$SCW/twins/me/desired/get/response/error");
  EXPECT_EQ(reply.code, Code::kTooManyRequests);
  EXPECT_EQ(reply.payload, R"({"error":"too many requests","retry_after_ms":250})");
  EXPECT_TRUE(reply.quota.empty());
}

TEST(ErrorReplyTest, MessagesAreEscapedAsJsonStrings) {
  Reply reply = ErrorReply("t", Status::InvalidArgument("twin_id", "quote \" and\nnewline"), {});
  EXPECT_EQ(reply.payload, R"({"error":"quote \" and\nnewline","argument":"twin_id"})");
}

TEST(ErrorReplyTest, QuotaAndStorageErrorsCarryTheirFigures) {
  Reply quota = ErrorReply("t", Status::QuotaExceeded("documents", 64, 64), {});
  EXPECT_EQ(quota.quota, "documents");
  EXPECT_EQ(quota.payload,
            R"({"error":"quota exceeded: documents is limited to 64","resource":"documents","quota":64,"current":64})");
  Reply disk = ErrorReply("t", Status::InsufficientStorage("disk full", 100, 3), {});
  EXPECT_EQ(disk.code, Code::kInsufficientStorage);
  EXPECT_TRUE(disk.quota.empty());
  EXPECT_EQ(disk.payload, R"({"error":"disk full","resource":"disk_space","min_free_mb":100,"free_mb":3})");
}

// Internal errors tell the device a log id and nothing of the failure; the log has the detail.
class MqttRequestsTest : public testing::Test {
 protected:
  void Open(std::unique_ptr<DocumentStore> store) { engine_ = std::make_unique<Engine>(std::move(store), Limits()); }

  Reply Ask(const std::string& topic, const std::string& payload) {
    TwinTopic parsed;
    EXPECT_EQ(ClassifyTopic(topic, &parsed), TopicKind::kMethod);
    return HandleTwinRequest(*engine_, "dev1", topic, parsed, payload, {Durability::kBeforeReturn, "dev1", 1},
                             Logger());
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
