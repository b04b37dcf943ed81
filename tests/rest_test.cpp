#include "rest/rest_server.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <thread>

#include "rest/auth.hpp"
#include "tests/support/broken_store.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using test::BrokenStore;
using test::HttpCall;
using test::HttpClient;
using test::HttpReply;
using test::ThrowingStore;
using test::UrlEncode;

constexpr char kToken[] = "6a1f4e0c-2a4b-4f4e-9a53-2b6c1c3a9d11";
constexpr char kTwinBase[] = "/iot/v1/regions/fr-par/twins/";

HttpCall MakeCall(const std::string& method, const std::string& url, std::vector<std::string> headers = {},
                  const std::optional<std::string>& body = {}) {
  HttpCall call;
  call.method = method;
  call.url = url;
  call.headers = std::move(headers);
  call.send_body = body.has_value();
  call.body = body.value_or("");
  call.insecure_tls = true;
  return call;
}

std::string TwinPath(const std::string& encoded_twin) { return kTwinBase + encoded_twin; }
std::string DocPath(const std::string& encoded_twin, const std::string& doc) {
  return kTwinBase + encoded_twin + "/documents/" + doc;
}

class RestTest : public testing::Test {
 protected:
  void SetUp() override {
    OpenEngine(Limits());
    Start(Options());
  }

  void TearDown() override {
    client_.Disconnect();
    server_.reset();
    engine_.reset();
  }

  static RestOptions Options() {
    RestOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.tokens = {kToken};
    return options;
  }

  void OpenEngine(Limits limits) {
    client_.Disconnect();
    server_.reset();
    engine_.reset();
    auto store = OpenRocksDbStore(dir_.sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    engine_ = std::make_unique<Engine>(std::move(store).value(), limits);
  }

  void OpenEngineOver(std::unique_ptr<DocumentStore> store) {
    client_.Disconnect();
    server_.reset();
    engine_ = std::make_unique<Engine>(std::move(store), Limits());
    Start(Options());
  }

  void Start(const RestOptions& options) {
    client_.Disconnect();
    server_.reset();
    auto started = RestServer::Start(options, *engine_, Logger());
    ASSERT_TRUE(started.ok()) << started.status().message();
    server_ = std::move(started).value();
    scheme_ = options.tls_cert.empty() ? "http" : "https";
  }

  LogFn Logger() {
    return [this](LogLevel, const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mutex_);
      log_ += line + "\n";
    };
  }

  std::string Logged() {
    std::lock_guard<std::mutex> lock(log_mutex_);
    return log_;
  }

  std::string Url(const std::string& path) const {
    return scheme_ + "://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  // An authenticated call; a body is sent as application/json.
  HttpReply Call(const std::string& method, const std::string& path, const std::optional<std::string>& body = {},
                 std::vector<std::string> headers = {}) {
    std::vector<std::string> all = {std::string("X-Auth-Token: ") + kToken, "Expect:"};
    if (body) all.push_back("Content-Type: application/json");
    all.insert(all.end(), headers.begin(), headers.end());
    return client_.Send(MakeCall(method, Url(path), std::move(all), body));
  }

  HttpReply Put(const std::string& doc, const std::string& body, std::vector<std::string> headers = {}) {
    return Call("PUT", DocPath("dev1", doc), body, std::move(headers));
  }

  test::TempDir dir_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RestServer> server_;
  std::string scheme_ = "http";
  HttpClient client_;
  std::mutex log_mutex_;
  std::string log_;
};

// Status, exact JSON body and the exact Content-Type the TypeScript SDK insists on.
#define EXPECT_JSON_REPLY(reply, code, json)                             \
  do {                                                                   \
    const HttpReply& r_ = (reply);                                       \
    EXPECT_EQ(r_.error, "");                                             \
    EXPECT_EQ(r_.status, code) << r_.body;                               \
    EXPECT_EQ(r_.body, json);                                            \
    EXPECT_EQ(r_.header("content-type"), "application/json") << r_.body; \
  } while (0)

#define EXPECT_NO_BODY_REPLY(reply, code)  \
  do {                                     \
    const HttpReply& r_ = (reply);         \
    EXPECT_EQ(r_.error, "");               \
    EXPECT_EQ(r_.status, code) << r_.body; \
    EXPECT_EQ(r_.body, "");                \
    EXPECT_FALSE(r_.has("content-type"));  \
  } while (0)

const char kBadDataJson[] =
    R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"data",)j"
    R"j("reason":"constraint","help_message":"data must be a JSON object"}]})j";

// ---- endpoints -------------------------------------------------------------------------

TEST_F(RestTest, PutCreatesDocumentAtVersionOneAndReturnsTwinDocument) {
  HttpReply put = Put("desired", R"j({"data":{"temp":21.5,"on":true}})j");
  EXPECT_JSON_REPLY(put, 200,
                    R"j({"twin_id":"dev1","document_name":"desired","version":1,"data":{"temp":21.5,"on":true}})j");
  EXPECT_EQ(put.header("etag"), "\"1\"");
}

TEST_F(RestTest, PutWithDataNotAnObjectIsInvalidArgument) {
  EXPECT_JSON_REPLY(Put("desired", R"j({"data":[1,2]})j"), 400, kBadDataJson);
  EXPECT_JSON_REPLY(Call("GET", DocPath("dev1", "desired")), 404,
                    R"j({"type":"not_found","resource":"twin_document","resource_id":"desired",)j"
                    R"j("message":"document not found"})j");
}

TEST_F(RestTest, PutWithoutBodyIsRequiredArgument) {
  EXPECT_JSON_REPLY(
      Call("PUT", DocPath("dev1", "d"), std::string()), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"data",)j"
      R"j("reason":"required","help_message":"a JSON body {\"version\"?: N, \"data\": {...}} is required"}]})j");
}

TEST_F(RestTest, PutReplacesAndBumpsVersion) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1,"b":2}})j").status, 200);
  HttpReply put = Put("d", R"j({"version":1,"data":{"c":3}})j");
  EXPECT_JSON_REPLY(put, 200, R"j({"twin_id":"dev1","document_name":"d","version":2,"data":{"c":3}})j");
  EXPECT_EQ(put.header("etag"), "\"2\"");
}

TEST_F(RestTest, GetReturnsTwinDocumentWithETag) {
  ASSERT_EQ(Put("desired", R"j({"data":{"x":"y"}})j").status, 200);
  HttpReply got = Call("GET", DocPath("dev1", "desired"));
  EXPECT_JSON_REPLY(got, 200, R"j({"twin_id":"dev1","document_name":"desired","version":1,"data":{"x":"y"}})j");
  EXPECT_EQ(got.header("etag"), "\"1\"");
}

TEST_F(RestTest, GetOfMissingDocumentIsNotFound) {
  HttpReply got = Call("GET", DocPath("dev1", "nothing"));
  EXPECT_JSON_REPLY(got, 404,
                    R"j({"type":"not_found","resource":"twin_document","resource_id":"nothing",)j"
                    R"j("message":"document not found"})j");
  EXPECT_FALSE(got.has("etag"));
}

TEST_F(RestTest, HeadAnswersLikeGetWithoutBody) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  HttpReply head = Call("HEAD", DocPath("dev1", "d"));
  EXPECT_EQ(head.error, "");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  EXPECT_EQ(head.header("etag"), "\"1\"");
  EXPECT_EQ(head.header("content-length"), "65");
}

TEST_F(RestTest, PatchMergesAndBumpsVersion) {
  ASSERT_EQ(Put("d", R"j({"data":{"keep":1,"drop":2,"obj":{"x":1}}})j").status, 200);
  HttpReply patch = Call("PATCH", DocPath("dev1", "d"), R"j({"data":{"drop":null,"obj":{"y":2}}})j");
  EXPECT_JSON_REPLY(patch, 200,
                    R"j({"twin_id":"dev1","document_name":"d","version":2,"data":{"keep":1,"obj":{"x":1,"y":2}}})j");
  EXPECT_EQ(patch.header("etag"), "\"2\"");
}

TEST_F(RestTest, PatchWithNullInArrayIsInvalidArgumentAndChangesNothing) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  EXPECT_JSON_REPLY(
      Call("PATCH", DocPath("dev1", "d"), R"j({"data":{"a":[1,null]}})j"), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"data",)j"
      R"j("reason":"constraint","help_message":"data.a[1]: arrays cannot contain null"}]})j");
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).body,
            R"j({"twin_id":"dev1","document_name":"d","version":1,"data":{"a":1}})j");
}

TEST_F(RestTest, ListNamesEveryDocumentOfTheTwin) {
  ASSERT_EQ(Put("b", R"j({"data":{}})j").status, 200);
  ASSERT_EQ(Put("a", R"j({"data":{}})j").status, 200);
  ASSERT_EQ(Call("PUT", DocPath("other", "c"), R"j({"data":{}})j").status, 200);
  EXPECT_JSON_REPLY(Call("GET", TwinPath("dev1")), 200,
                    R"j({"documents":[{"document_name":"a"},{"document_name":"b"}]})j");
  EXPECT_JSON_REPLY(Call("GET", TwinPath("nobody")), 200, R"j({"documents":[]})j");
}

TEST_F(RestTest, ListWithInvalidTwinIdIsInvalidArgument) {
  EXPECT_JSON_REPLY(
      Call("GET", TwinPath("a+b")), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"twin_id",)j"
      R"j("reason":"constraint","help_message":"twin id cannot contain '/', '+', '#' or NUL"}]})j");
}

TEST_F(RestTest, DeleteAnswers204AndRemovesTheDocument) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  EXPECT_NO_BODY_REPLY(Call("DELETE", DocPath("dev1", "d")), 204);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 404);
  EXPECT_EQ(Put("d", R"j({"data":{"a":2}})j").header("etag"), "\"1\"");
}

TEST_F(RestTest, DeleteOfMissingDocumentIsNotFound) {
  EXPECT_JSON_REPLY(Call("DELETE", DocPath("dev1", "ghost")), 404,
                    R"j({"type":"not_found","resource":"twin_document","resource_id":"ghost",)j"
                    R"j("message":"document not found"})j");
}

TEST_F(RestTest, DeleteWithBodyVersionChecksIt) {
  ASSERT_EQ(Put("d", R"j({"data":{}})j").status, 200);
  EXPECT_JSON_REPLY(
      Call("DELETE", DocPath("dev1", "d"), R"j({"version":7})j"), 412,
      R"j({"type":"precondition_failed","precondition":"document_version",)j"
      R"j("help_message":"expected version 7, document is at 1","message":"document version mismatch"})j");
  EXPECT_NO_BODY_REPLY(Call("DELETE", DocPath("dev1", "d"), R"j({"version":1})j"), 204);
}

TEST_F(RestTest, DeleteWithMalformedBodyIsInvalidArgument) {
  ASSERT_EQ(Put("d", R"j({"data":{}})j").status, 200);
  EXPECT_JSON_REPLY(
      Call("DELETE", DocPath("dev1", "d"), R"j({"version":"one"})j"), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"version",)j"
      R"j("reason":"constraint","help_message":"version must be an integer from 0 to 2^53"}]})j");
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 200);
}

TEST_F(RestTest, DeleteAllRemovesEveryDocumentOfThatTwinOnly) {
  ASSERT_EQ(Put("a", R"j({"data":{}})j").status, 200);
  ASSERT_EQ(Put("b", R"j({"data":{}})j").status, 200);
  ASSERT_EQ(Call("PUT", DocPath("other", "c"), R"j({"data":{}})j").status, 200);
  EXPECT_NO_BODY_REPLY(Call("DELETE", TwinPath("dev1")), 204);
  EXPECT_EQ(Call("GET", TwinPath("dev1")).body, R"j({"documents":[]})j");
  EXPECT_EQ(Call("GET", TwinPath("other")).body, R"j({"documents":[{"document_name":"c"}]})j");
  EXPECT_NO_BODY_REPLY(Call("DELETE", TwinPath("dev1")), 204);
}

TEST_F(RestTest, DeleteAllWithInvalidTwinIdIsInvalidArgument) {
  EXPECT_EQ(Call("DELETE", TwinPath("a%23b")).status, 400);
  EXPECT_EQ(Call("DELETE", TwinPath(std::string(129, 'x'))).status, 400);
}

// ---- errors ----------------------------------------------------------------------------

TEST_F(RestTest, MalformedJsonIsInvalidArgument) {
  EXPECT_JSON_REPLY(
      Put("d", R"j({"data":{"a":)j"), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"data",)j"
      R"j("reason":"constraint","help_message":"invalid JSON near byte 13"}]})j");
  EXPECT_EQ(Put("d", R"j({"data":{}} trailing)j").status, 400);
  EXPECT_EQ(Put("d", "{\"data\":{\"a\":\"\xff\"}}").status, 400);
}

TEST_F(RestTest, BadDocumentNameIsInvalidArgument) {
  const std::string reserved =
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"document_name",)j"
      R"j("reason":"constraint","help_message":"document names starting with '_' are reserved (only _config exists)"}]})j";
  EXPECT_JSON_REPLY(Put("_secret", R"j({"data":{}})j"), 400, reserved);
  EXPECT_JSON_REPLY(Call("GET", DocPath("dev1", "_secret")), 400, reserved);
  EXPECT_EQ(Put("a%20b", R"j({"data":{}})j").status, 400);
  EXPECT_EQ(Put(std::string(129, 'd'), R"j({"data":{}})j").status, 400);
}

TEST_F(RestTest, ReservedKeyInDataIsInvalidArgument) {
  HttpReply put = Put("d", R"j({"data":{"_hidden":1}})j");
  EXPECT_EQ(put.status, 400);
  EXPECT_NE(put.body.find(R"j("argument_name":"data")j"), std::string::npos) << put.body;
}

TEST_F(RestTest, ConfigDocumentIsWritable) {
  EXPECT_EQ(Put("_config", R"j({"data":{"documents":{"desired":{"_tags":{"site":"lab"}}}}})j").status, 200);
  EXPECT_EQ(Put("_config", R"j({"data":{"documents":{"desired":{"_tsdb_trigger":"sometimes"}}}})j").status, 400);
}

TEST_F(RestTest, BodyVersionMismatchIsPreconditionFailed) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  ASSERT_EQ(Put("d", R"j({"data":{"a":2}})j").status, 200);
  const std::string mismatch =
      R"j({"type":"precondition_failed","precondition":"document_version",)j"
      R"j("help_message":"expected version 1, document is at 2","message":"document version mismatch"})j";
  EXPECT_JSON_REPLY(Put("d", R"j({"version":1,"data":{"a":3}})j"), 412, mismatch);
  EXPECT_JSON_REPLY(Call("PATCH", DocPath("dev1", "d"), R"j({"version":1,"data":{"a":3}})j"), 412, mismatch);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).header("etag"), "\"2\"");
}

TEST_F(RestTest, QuotaExceededIsForbiddenWithFigures) {
  Limits limits;
  limits.max_documents = 2;
  OpenEngine(limits);
  Start(Options());
  ASSERT_EQ(Put("a", R"j({"data":{}})j").status, 200);
  ASSERT_EQ(Put("b", R"j({"data":{}})j").status, 200);
  EXPECT_JSON_REPLY(Put("c", R"j({"data":{}})j"), 403,
                    R"j({"type":"quotas_exceeded","details":[{"resource":"twin_documents","quota":2,"current":2}],)j"
                    R"j("message":"quota exceeded: twin_documents is limited to 2"})j");
  EXPECT_EQ(Put("b", R"j({"data":{"still":"writable"}})j").status, 200);
}

TEST_F(RestTest, WritesOverATwinsRateAreTooManyRequestsWithRetryAfter) {
  RestOptions options = Options();
  options.writes_per_second = 1;
  options.write_burst = 2;
  Start(options);
  ASSERT_EQ(Put("a", R"j({"data":{"n":1}})j").status, 200);
  // One token a second: among the next writes one is refused, unless each took a second.
  HttpReply refused;
  int admitted = 0;
  for (int i = 0; i < 10 && refused.status != 429; ++i) {
    HttpReply reply = Call("PATCH", DocPath("dev1", "a"), R"j({"data":{"n":2}})j");
    if (reply.status == 200) ++admitted;
    if (reply.status != 200) refused = reply;
  }
  ASSERT_EQ(refused.status, 429) << refused.body;
  EXPECT_EQ(refused.header("retry-after"), "1");
  EXPECT_NE(refused.body.find(R"j("type":"too_many_requests")j"), std::string::npos) << refused.body;
  EXPECT_NE(refused.body.find(R"j("retry_after_ms":)j"), std::string::npos) << refused.body;
  // The refused write changed nothing; reads and other twins are not limited.
  HttpReply read = Call("GET", DocPath("dev1", "a"));
  EXPECT_EQ(read.status, 200);
  EXPECT_NE(read.body.find("\"version\":" + std::to_string(1 + admitted)), std::string::npos) << read.body;
  EXPECT_EQ(Call("PUT", DocPath("dev2", "a"), R"j({"data":{}})j").status, 200);
}

TEST_F(RestTest, DocumentLargerThanLimitIsInvalidArgument) {
  Limits limits;
  limits.max_document_bytes = 100;
  OpenEngine(limits);
  Start(Options());
  HttpReply put = Put("d", R"j({"data":{"s":")j" + std::string(120, 'x') + "\"}}");
  EXPECT_EQ(put.status, 400);
  EXPECT_NE(put.body.find("larger than the limit of 100"), std::string::npos) << put.body;
}

// The log id of an internal-error reply, "" if the reply is not one. The client is told the
// id only; the detail is in the log beside the same id.
std::string InternalErrorId(const HttpReply& reply) {
  static const std::regex kBody(R"j(\{"type":"internal_error","message":"internal error \(log id ([0-9a-f]{8})\)"\})j");
  std::smatch match;
  if (reply.status != 500 || reply.header("content-type") != "application/json") return "";
  return std::regex_match(reply.body, match, kBody) ? match[1].str() : "";
}

TEST_F(RestTest, StoreFailureIsInternalErrorAndLogged) {
  OpenEngineOver(std::make_unique<BrokenStore>());
  const HttpReply get = Call("GET", DocPath("dev1", "d"));
  const std::string get_id = InternalErrorId(get);
  ASSERT_NE(get_id, "") << get.status << " " << get.body;
  const HttpReply put = Put("d", R"j({"data":{}})j");
  const std::string put_id = InternalErrorId(put);
  ASSERT_NE(put_id, "") << put.status << " " << put.body;
  EXPECT_NE(get_id, put_id);
  EXPECT_EQ(get.body.find("disk on fire"), std::string::npos) << get.body;
  EXPECT_NE(Logged().find("REST: internal error: IO error: disk on fire (log id " + get_id + ")"), std::string::npos)
      << Logged();
  EXPECT_NE(Logged().find("REST: internal error: IO error: disk on fire (log id " + put_id + ")"), std::string::npos)
      << Logged();
}

TEST_F(RestTest, ExceptionInHandlerIsInternalErrorAndServerGoesOn) {
  OpenEngineOver(std::make_unique<ThrowingStore>());
  const HttpReply get = Call("GET", DocPath("dev1", "d"));
  const std::string id = InternalErrorId(get);
  ASSERT_NE(id, "") << get.status << " " << get.body;
  EXPECT_NE(Logged().find("REST: request failed: store exploded (log id " + id + ")"), std::string::npos) << Logged();
  EXPECT_NE(InternalErrorId(Call("GET", "/healthz")), "");
  EXPECT_EQ(Call("GET", TwinPath("dev1")).status, 500);  // List does not throw here: a plain store error
}

// ---- conditional requests --------------------------------------------------------------

TEST_F(RestTest, IfNoneMatchWithCurrentETagIsNotModified) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  HttpReply same = Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: \"1\""});
  EXPECT_NO_BODY_REPLY(same, 304);
  EXPECT_EQ(same.header("etag"), "\"1\"");
  EXPECT_EQ(Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: W/\"1\""}).status, 304);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: \"9\", \"1\""}).status, 304);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: *"}).status, 304);
}

TEST_F(RestTest, IfNoneMatchWithOtherETagReturnsDocument) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  ASSERT_EQ(Put("d", R"j({"data":{"a":2}})j").status, 200);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: \"1\""}).status, 200);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: garbage"}).status, 200);
  EXPECT_EQ(Call("GET", DocPath("dev1", "missing"), {}, {"If-None-Match: *"}).status, 404);
}

TEST_F(RestTest, IfMatchWithCurrentETagWrites) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  EXPECT_EQ(Put("d", R"j({"data":{"a":2}})j", {"If-Match: \"1\""}).header("etag"), "\"2\"");
  EXPECT_EQ(Call("PATCH", DocPath("dev1", "d"), R"j({"data":{"b":3}})j", {"If-Match: \"2\""}).header("etag"), "\"3\"");
  EXPECT_EQ(Put("d", R"j({"data":{"a":4}})j", {"If-Match: \"7\", \"3\""}).header("etag"), "\"4\"");
  EXPECT_EQ(Put("d", R"j({"version":4,"data":{"a":5}})j", {"If-Match: \"4\""}).header("etag"), "\"5\"");
  EXPECT_NO_BODY_REPLY(Call("DELETE", DocPath("dev1", "d"), {}, {"If-Match: \"5\""}), 204);
}

TEST_F(RestTest, IfMatchWithStaleETagIsPreconditionFailed) {
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  ASSERT_EQ(Put("d", R"j({"data":{"a":2}})j").status, 200);
  const std::string stale =
      R"j({"type":"precondition_failed","precondition":"document_version",)j"
      R"j("help_message":"expected version 1, document is at 2","message":"document version mismatch"})j";
  EXPECT_JSON_REPLY(Put("d", R"j({"data":{"a":3}})j", {"If-Match: \"1\""}), 412, stale);
  EXPECT_JSON_REPLY(Call("PATCH", DocPath("dev1", "d"), R"j({"data":{"a":3}})j", {"If-Match: \"1\""}), 412, stale);
  EXPECT_JSON_REPLY(Call("DELETE", DocPath("dev1", "d"), {}, {"If-Match: \"1\""}), 412, stale);
  EXPECT_JSON_REPLY(
      Put("d", R"j({"data":{"a":3}})j", {"If-Match: \"1\", \"3\""}), 412,
      R"j({"type":"precondition_failed","precondition":"document_version",)j"
      R"j("help_message":"expected version 1 or 3, document is at 2","message":"document version mismatch"})j");
  EXPECT_EQ(Put("d", R"j({"version":1,"data":{"a":3}})j", {"If-Match: \"2\""}).status, 412);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).header("etag"), "\"2\"");
}

TEST_F(RestTest, IfMatchStarNeedsAnExistingDocument) {
  EXPECT_JSON_REPLY(
      Put("d", R"j({"data":{"a":1}})j", {"If-Match: *"}), 412,
      R"j({"type":"precondition_failed","precondition":"document_version",)j"
      R"j("help_message":"expected version *, document is at 0","message":"document version mismatch"})j");
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 404);
  EXPECT_EQ(Call("DELETE", DocPath("dev1", "d"), {}, {"If-Match: *"}).status, 412);
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  EXPECT_EQ(Put("d", R"j({"data":{"a":2}})j", {"If-Match: *"}).header("etag"), "\"2\"");
  EXPECT_EQ(Call("DELETE", DocPath("dev1", "d"), {}, {"If-Match: *"}).status, 204);
}

TEST_F(RestTest, MalformedIfMatchIsInvalidArgument) {
  ASSERT_EQ(Put("d", R"j({"data":{}})j").status, 200);
  for (const char* value : {"1", "\"abc\"", "W/\"1\"", "\"0\"", "\"1", "\"01\""}) {
    HttpReply put = Put("d", R"j({"data":{}})j", {std::string("If-Match: ") + value});
    EXPECT_EQ(put.status, 400) << value;
    EXPECT_NE(put.body.find(R"j("argument_name":"If-Match","reason":"format")j"), std::string::npos) << put.body;
  }
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).header("etag"), "\"1\"");
}

TEST_F(RestTest, ConcurrentConditionalPatchesLoseNothing) {
  RestOptions options = Options();
  options.threads = 8;
  Start(options);
  ASSERT_EQ(Put("counter", R"j({"data":{"n":0}})j").status, 200);
  constexpr int kWriters = 4, kIncrements = 10;
  std::atomic<int> conflicts{0}, failures{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&] {
      HttpClient client;
      for (int done = 0; done < kIncrements;) {
        HttpCall get = MakeCall("GET", Url(DocPath("dev1", "counter")), {std::string("X-Auth-Token: ") + kToken});
        HttpReply current = client.Send(get);
        size_t at = current.body.find("\"n\":");
        if (current.status != 200 || at == std::string::npos) {
          ++failures;
          return;
        }
        int n = std::atoi(current.body.c_str() + at + 4);
        HttpCall patch = MakeCall("PATCH", get.url,
                                  {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json",
                                   "If-Match: " + current.header("etag")},
                                  R"j({"data":{"n":)j" + std::to_string(n + 1) + "}}");
        HttpReply written = client.Send(patch);
        if (written.status == 200) {
          ++done;
        } else if (written.status == 412) {
          ++conflicts;
        } else {
          ++failures;
          return;
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Call("GET", DocPath("dev1", "counter")).body,
            R"j({"twin_id":"dev1","document_name":"counter","version":41,"data":{"n":40}})j");
}

// ---- authentication --------------------------------------------------------------------

TEST_F(RestTest, MissingTokenIsDeniedAuthentication) {
  HttpCall call = MakeCall("GET", Url(TwinPath("dev1")));
  EXPECT_JSON_REPLY(
      client_.Send(call), 401,
      R"j({"type":"denied_authentication","method":"secret_key","reason":"invalid_argument",)j"
      R"j("message":"authentication is denied: the X-Auth-Token (or Authorization: Bearer) header is missing"})j");
  call.url = Url("/no/such/path");
  EXPECT_EQ(client_.Send(call).status, 401);
}

TEST_F(RestTest, WrongTokenIsDeniedAuthentication) {
  const std::string denied = R"j({"type":"denied_authentication","method":"secret_key","reason":"invalid_argument",)j"
                             R"j("message":"authentication is denied: invalid X-Auth-Token"})j";
  const std::string token = kToken;
  for (const std::string& wrong :
       {std::string("nope"), token.substr(0, token.size() - 1), token + "0", token.substr(0, token.size() - 1) + "2"}) {
    HttpCall call = MakeCall("GET", Url(TwinPath("dev1")), {"X-Auth-Token: " + wrong});
    EXPECT_JSON_REPLY(client_.Send(call), 401, denied);
  }
}

TEST_F(RestTest, BearerTokenIsAccepted) {
  HttpCall call = MakeCall("GET", Url(TwinPath("dev1")), {std::string("Authorization: Bearer ") + kToken});
  EXPECT_JSON_REPLY(client_.Send(call), 200, R"j({"documents":[]})j");
  call.headers = {std::string("Authorization: bearer  ") + kToken + " "};
  EXPECT_EQ(client_.Send(call).status, 200);
  call.headers = {"Authorization: Bearer wrong"};
  HttpReply denied = client_.Send(call);
  EXPECT_EQ(denied.status, 401);
  EXPECT_EQ(denied.header("www-authenticate"), "Bearer");
  call.headers = {std::string("Authorization: Basic ") + kToken};
  EXPECT_EQ(client_.Send(call).status, 401);
}

// An address that keeps failing is refused (429, its tokens not even checked) for a doubling
// while; another address, and a correct token from it, are served as before. Logged.
TEST_F(RestTest, RepeatedFailuresRefuseThatAddressOnly) {
  HttpClient guesser;
  HttpCall guess = MakeCall("GET", Url(TwinPath("dev1")), {"X-Auth-Token: guess"});
  guess.source_address = "127.0.0.2";
  for (int i = 0; i < 10; ++i) ASSERT_EQ(guesser.Send(guess).status, 401) << i;
  EXPECT_EQ(guesser.Send(guess).status, 401);  // the 11th is checked, then the address is refused
  HttpReply refused = guesser.Send(guess);
  EXPECT_EQ(refused.status, 429);
  EXPECT_EQ(refused.header("retry-after"), "1");
  guess.headers = {std::string("X-Auth-Token: ") + kToken};
  EXPECT_EQ(guesser.Send(guess).status, 429);            // not checked while refused
  EXPECT_EQ(Call("GET", TwinPath("dev1")).status, 200);  // from 127.0.0.1
  const std::string log = Logged();
  EXPECT_NE(log.find("authentication failed from 127.0.0.2 (invalid X-Auth-Token): 1 failure from it"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("11 failures from it, 11 in all; its requests are refused for 1 s"), std::string::npos) << log;
}

// Each failed token is one failure, in the metrics and in the log alike: on a twin path and on
// /metrics. A refused address that comes back gets a 429 that is neither a failure nor the
// per-twin rate limit's.
TEST_F(RestTest, EachFailedTokenIsCountedOnce) {
  metrics::TwinsMetrics metrics("test");
  RestOptions options = Options();
  options.metrics = &metrics;
  options.auth_failures = 1;
  Start(options);
  HttpClient guesser;
  HttpCall guess = MakeCall("GET", Url(DocPath("dev1", "d")), {"X-Auth-Token: guess"});
  guess.source_address = "127.0.0.2";
  ASSERT_EQ(guesser.Send(guess).status, 401);
  guess.url = Url("/metrics");
  ASSERT_EQ(guesser.Send(guess).status, 401);  // the second failure: the address is refused
  guess.url = Url(DocPath("dev1", "d"));
  ASSERT_EQ(guesser.Send(guess).status, 429);  // not checked, so not a failure
  const std::string text = metrics.registry().RenderPrometheus();
  EXPECT_NE(text.find("\ntwins_rest_auth_failures_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("twins_requests_total{api=\"rest\",operation=\"get\",result=\"unauthenticated\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("twins_requests_total{api=\"rest\",operation=\"get\",result=\"too_many_requests\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("twins_rate_limited_total{api=\"rest\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(Logged().find("2 failures from it, 2 in all"), std::string::npos) << Logged();
}

TEST_F(RestTest, AnyConfiguredTokenIsAccepted) {
  RestOptions options = Options();
  options.tokens = {"first-secret", kToken};
  Start(options);
  for (const char* token : {"first-secret", kToken}) {
    HttpCall call = MakeCall("GET", Url(TwinPath("dev1")), {std::string("X-Auth-Token: ") + token});
    EXPECT_EQ(client_.Send(call).status, 200) << token;
  }
}

TEST_F(RestTest, TokensFromFileAreAccepted) {
  const std::string path = dir_.sub("tokens");
  std::ofstream(path) << "# REST secrets\n\n  alpha-secret  \r\nbeta-secret\n#gamma-secret\n";
  auto tokens = ReadTokensFile(path);
  ASSERT_TRUE(tokens.ok()) << tokens.status().message();
  EXPECT_EQ(*tokens, (std::vector<std::string>{"alpha-secret", "beta-secret"}));
  RestOptions options = Options();
  options.tokens = *tokens;
  Start(options);
  for (const char* token : {"alpha-secret", "beta-secret"}) {
    HttpCall call = MakeCall("GET", Url(TwinPath("dev1")), {std::string("X-Auth-Token: ") + token});
    EXPECT_EQ(client_.Send(call).status, 200) << token;
  }
  HttpCall commented = MakeCall("GET", Url(TwinPath("dev1")), {"X-Auth-Token: #gamma-secret"});
  EXPECT_EQ(client_.Send(commented).status, 401);
}

TEST_F(RestTest, UnreadableOrEmptyTokensFileIsAnErrorNamingIt) {
  auto missing = ReadTokensFile(dir_.sub("absent"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir_.sub("absent")), std::string::npos) << missing.status().message();
  const std::string empty = dir_.sub("empty");
  std::ofstream(empty) << "# nothing yet\n\n";
  auto none = ReadTokensFile(empty);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "tokens file " + empty + " holds no token");
}

TEST_F(RestTest, StartWithoutTokenIsRefusedUnlessAnonymousIsAllowed) {
  RestOptions options = Options();
  options.tokens.clear();
  auto refused = RestServer::Start(options, *engine_, Logger());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("refuses to start without a token"), std::string::npos);

  options.allow_anonymous = true;
  Start(options);
  HttpCall call = MakeCall("GET", Url(TwinPath("dev1")));
  EXPECT_EQ(client_.Send(call).status, 200);
}

// ---- routing ---------------------------------------------------------------------------

TEST_F(RestTest, UnknownPathIsNotFoundJson) {
  for (const std::string& path : {std::string("/"), std::string("/iot/v1/regions/fr-par/twins"), TwinPath("dev1") + "/",
                                  DocPath("dev1", "d") + "/extra", TwinPath("dev1") + "/things/d"}) {
    HttpReply reply = Call("GET", path);
    EXPECT_JSON_REPLY(
        reply, 404,
        R"j({"type":"not_found","resource":"path","resource_id":")j" + path + R"j(","message":"no such endpoint"})j");
  }
}

TEST_F(RestTest, UnknownRegionIsNotFound) {
  EXPECT_JSON_REPLY(Call("GET", "/iot/v1/regions/nl-ams/twins/dev1"), 404,
                    R"j({"type":"not_found","resource":"region","resource_id":"nl-ams",)j"
                    R"j("message":"unknown region, this server serves fr-par"})j");
  RestOptions options = Options();
  options.region = "nl-ams";
  Start(options);
  EXPECT_EQ(Call("GET", "/iot/v1/regions/nl-ams/twins/dev1").status, 200);
  EXPECT_EQ(Call("GET", "/iot/v1/regions/fr-par/twins/dev1").status, 404);
}

TEST_F(RestTest, WrongMethodIs405WithAllow) {
  HttpReply post = Call("POST", DocPath("dev1", "d"), R"j({"data":{}})j");
  EXPECT_JSON_REPLY(post, 405,
                    R"j({"type":"method_not_allowed","message":"method POST is not allowed here; )j"
                    R"j(allowed: GET, HEAD, PUT, PATCH, DELETE"})j");
  EXPECT_EQ(post.header("allow"), "GET, HEAD, PUT, PATCH, DELETE");
  HttpReply put = Call("PUT", TwinPath("dev1"), R"j({"data":{}})j");
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(put.header("allow"), "GET, HEAD, DELETE");
  HttpReply health = Call("DELETE", "/healthz");
  EXPECT_EQ(health.status, 405);
  EXPECT_EQ(health.header("allow"), "GET, HEAD");
  EXPECT_EQ(health.header("content-type"), "application/json");
}

TEST_F(RestTest, UnknownHttpMethodStillGetsJson) {
  HttpReply reply = Call("BREW", DocPath("dev1", "d"));
  EXPECT_EQ(reply.status, 400);
  EXPECT_EQ(reply.header("content-type"), "application/json");
  EXPECT_EQ(reply.body.rfind(R"j({"type":"invalid_arguments",)j", 0), 0u) << reply.body;
}

TEST_F(RestTest, PercentEncodedTwinIdIsDecoded) {
  const std::string twin = "kitchen sensor \xC3\xA9t\xC3\xA9/2";  // refused: '/'
  const std::string ok_twin = "kitchen sensor \xC3\xA9t\xC3\xA9";
  HttpReply put = Call("PUT", DocPath(UrlEncode(ok_twin), "desired"), R"j({"data":{"a":1}})j");
  EXPECT_JSON_REPLY(put, 200,
                    "{\"twin_id\":\"kitchen sensor \xC3\xA9t\xC3\xA9\",\"document_name\":\"desired\",\"version\":1,"
                    "\"data\":{\"a\":1}}");
  EXPECT_EQ(Call("GET", DocPath("kitchen%20sensor%20%c3%a9t%c3%a9", "desired")).status, 200);
  EXPECT_EQ(Call("GET", TwinPath(UrlEncode(ok_twin))).body, R"j({"documents":[{"document_name":"desired"}]})j");
  EXPECT_EQ(Call("GET", DocPath("d%65v1", "d%65sired")).status, 404);  // dev1/desired: decoded, not found
  EXPECT_EQ(Call("PUT", DocPath(UrlEncode(twin), "desired"), R"j({"data":{}})j").status, 400);
}

TEST_F(RestTest, BadPercentEncodingIsInvalidArgument) {
  EXPECT_JSON_REPLY(
      Call("GET", DocPath("dev%zz", "d")), 400,
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"twin_id",)j"
      R"j("reason":"format","help_message":"the twin id has an invalid percent-encoding"}]})j");
  EXPECT_EQ(Call("GET", DocPath("dev1", "d%4")).status, 400);
  EXPECT_EQ(Call("GET", DocPath("dev%00x", "d")).status, 400);
  EXPECT_EQ(Call("GET", DocPath("%C3%28", "d")).status, 400);  // not UTF-8
}

// ---- bodies ----------------------------------------------------------------------------

TEST_F(RestTest, JsonContentTypeWithOrWithoutCharsetIsAccepted) {
  for (const char* type : {"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"}) {
    HttpCall call = MakeCall("PUT", Url(DocPath("dev1", "d")),
                             {std::string("X-Auth-Token: ") + kToken, std::string("Content-Type: ") + type},
                             R"j({"data":{}})j");
    HttpReply reply = client_.Send(call);
    EXPECT_EQ(reply.status, 200) << type;
    EXPECT_EQ(reply.header("content-type"), "application/json");
  }
  HttpCall untyped = MakeCall("PUT", Url(DocPath("dev1", "d")),
                              {std::string("X-Auth-Token: ") + kToken, "Content-Type:"}, R"j({"data":{}})j");
  EXPECT_EQ(client_.Send(untyped).status, 200);
}

TEST_F(RestTest, OtherContentTypeIsUnsupportedMediaType) {
  for (const char* type : {"text/plain", "application/x-www-form-urlencoded", "application/jsonp"}) {
    HttpCall call = MakeCall("PUT", Url(DocPath("dev1", "d")),
                             {std::string("X-Auth-Token: ") + kToken, std::string("Content-Type: ") + type},
                             R"j({"data":{}})j");
    EXPECT_JSON_REPLY(
        client_.Send(call), 415,
        R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":)j"
        R"j("Content-Type","reason":"constraint","help_message":"request bodies must be application/json"}]})j");
  }
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 404);
}

TEST_F(RestTest, OversizeBodyIs413AndNotRead) {
  Limits limits;
  limits.max_document_bytes = 1024;  // requests up to 2 * 1024 + 4096 bytes
  OpenEngine(limits);
  Start(Options());
  const std::string big = R"j({"data":{"s":")j" + std::string(7000, 'x') + "\"}}";
  const std::string too_large =
      R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":"body",)j"
      R"j("reason":"constraint","help_message":"request body of 7017 bytes is larger than the limit of 6144 bytes"}]})j";
  // With Expect: 100-continue the client never sends the body at all.
  HttpReply expect = Call("PUT", DocPath("dev1", "d"), big, {"Expect: 100-continue"});
  EXPECT_JSON_REPLY(expect, 413, too_large);
  EXPECT_EQ(expect.header("connection"), "close");
  HttpReply plain = Call("PATCH", DocPath("dev1", "d"), big);
  EXPECT_JSON_REPLY(plain, 413, too_large);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 404);
  // Just under the limit is read and judged on its content.
  const std::string fits = R"j({"data":{"s":")j" + std::string(6144 - 17, 'x') + "\"}}";
  ASSERT_EQ(fits.size(), 6144u);
  HttpReply under = Call("PUT", DocPath("dev1", "d"), fits);
  EXPECT_EQ(under.status, 400);
  EXPECT_NE(under.body.find("larger than the limit of 1024"), std::string::npos) << under.body;
}

TEST_F(RestTest, ClientWaitingForContinueIsServed) {
  HttpReply put = Call("PUT", DocPath("dev1", "d"), R"j({"data":{"waited":true}})j", {"Expect: 100-continue"});
  EXPECT_EQ(put.status, 200) << put.error;
  EXPECT_LT(put.header("date").size(), 40u);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).header("etag"), "\"1\"");
}

TEST_F(RestTest, OversizeChunkedBodyIs413) {
  Limits limits;
  limits.max_document_bytes = 1024;
  OpenEngine(limits);
  Start(Options());
  HttpCall call = MakeCall("PUT", Url(DocPath("dev1", "d")),
                           {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json"},
                           R"j({"data":{"s":")j" + std::string(9000, 'x') + "\"}}");
  call.chunked = true;
  HttpReply reply = client_.Send(call);
  EXPECT_EQ(reply.status, 413) << reply.error;
  EXPECT_EQ(reply.header("content-type"), "application/json");
  call.body = R"j({"data":{"chunked":true}})j";
  EXPECT_EQ(client_.Send(call).status, 200);
}

TEST_F(RestTest, KeepAliveConnectionSurvivesErrors) {
  ASSERT_EQ(Put("d", R"j({"data":{}})j").status, 200);
  EXPECT_EQ(Call("GET", "/nope").status, 404);
  HttpReply again = Call("GET", DocPath("dev1", "d"));
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(again.new_connections, 0);
  EXPECT_EQ(Put("d", "{").status, 400);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).new_connections, 0);
}

TEST_F(RestTest, Http10ClientIsServed) {
  HttpCall call = MakeCall("GET", Url(TwinPath("dev1")), {std::string("X-Auth-Token: ") + kToken});
  call.http10 = true;
  HttpReply reply = client_.Send(call);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"j({"documents":[]})j");
}

// ---- service endpoints and lifecycle ---------------------------------------------------

TEST_F(RestTest, HealthzAnswersWithoutToken) {
  HttpCall call = MakeCall("GET", Url("/healthz"));
  EXPECT_JSON_REPLY(client_.Send(call), 200, R"j({"status":"ok","graphite":"off"})j");
}

TEST_F(RestTest, HealthzSaysWhetherGraphiteIsReachableWithoutFailing) {
  std::atomic<bool> reachable{true};
  RestOptions options = Options();
  options.graphite_reachable = [&reachable] { return reachable.load(); };
  Start(options);
  EXPECT_JSON_REPLY(client_.Send(MakeCall("GET", Url("/healthz"))), 200, R"j({"status":"ok","graphite":"reachable"})j");
  reachable = false;
  EXPECT_JSON_REPLY(client_.Send(MakeCall("GET", Url("/healthz"))), 200,
                    R"j({"status":"ok","graphite":"unreachable"})j");
}

// A store that reads but refuses writes, as a full disk does.
class ReadOnlyStore : public BrokenStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override {
    return std::optional<StoredDocument>();
  }
  Status Writable(bool) override { return Status::Internal("the database cannot be written: IO error: No space"); }
};

TEST_F(RestTest, HealthzIsUnavailableWithTheReasonWhileWritesAreRefused) {
  OpenEngineOver(std::make_unique<ReadOnlyStore>());
  EXPECT_JSON_REPLY(client_.Send(MakeCall("GET", Url("/healthz"))), 503,
                    R"j({"type":"service_unavailable","status":"writes_refused",)j"
                    R"j("reason":"the database cannot be written: IO error: No space","graphite":"off",)j"
                    R"j("message":"the twin store refuses writes"})j");
}

TEST_F(RestTest, HealthzIsUnavailableWhenTheStoreFails) {
  OpenEngineOver(std::make_unique<BrokenStore>());
  HttpCall call = MakeCall("GET", Url("/healthz"));
  EXPECT_JSON_REPLY(client_.Send(call), 503,
                    R"j({"type":"service_unavailable","message":"the twin store is not usable"})j");
  EXPECT_NE(Logged().find("health check failed"), std::string::npos);
}

TEST_F(RestTest, ListedCorsOriginGetsPreflightAndExposedHeadersOthersNone) {
  RestOptions options = Options();
  options.cors_origins = {"https://app.example.com"};
  Start(options);
  HttpCall preflight = MakeCall("OPTIONS", Url(DocPath("dev1", "d")),
                                {"Origin: https://app.example.com", "Access-Control-Request-Method: PATCH",
                                 "Access-Control-Request-Headers: x-auth-token, if-match, content-type"});
  HttpReply reply = client_.Send(preflight);
  EXPECT_EQ(reply.status, 204);
  EXPECT_EQ(reply.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(reply.header("access-control-allow-methods"), "GET, HEAD, PUT, PATCH, DELETE");
  EXPECT_EQ(reply.header("access-control-allow-headers"),
            "X-Auth-Token, Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID");
  EXPECT_EQ(reply.header("vary"), "Origin");

  ASSERT_EQ(Put("d", R"j({"data":{}})j", {"Origin: https://app.example.com"}).status, 200);
  HttpReply get = Call("GET", DocPath("dev1", "d"), {}, {"Origin: https://app.example.com"});
  EXPECT_EQ(get.header("access-control-allow-origin"), "https://app.example.com");
  EXPECT_EQ(get.header("access-control-expose-headers"), "ETag, Retry-After, Allow");

  preflight.headers[0] = "Origin: https://evil.example.com";
  reply = client_.Send(preflight);
  EXPECT_NE(reply.status, 204);
  EXPECT_FALSE(reply.has("access-control-allow-origin"));
  get = Call("GET", DocPath("dev1", "d"), {}, {"Origin: https://evil.example.com"});
  EXPECT_EQ(get.status, 200);
  EXPECT_FALSE(get.has("access-control-allow-origin"));
  EXPECT_FALSE(get.has("access-control-expose-headers"));
}

TEST_F(RestTest, WithoutCorsOriginsNoAccessControlHeaders) {
  HttpReply get = Call("GET", TwinPath("dev1"), {}, {"Origin: https://app.example.com"});
  EXPECT_EQ(get.status, 200);
  EXPECT_FALSE(get.has("access-control-allow-origin"));
  EXPECT_FALSE(get.has("vary"));
}

TEST_F(RestTest, OpenApiIsServedWithoutToken) {
  std::ifstream file(std::filesystem::path(__FILE__).parent_path() / "../rest/openapi.yaml");
  std::stringstream expected;
  expected << file.rdbuf();
  ASSERT_FALSE(expected.str().empty());
  HttpCall call = MakeCall("GET", Url("/iot/v1/openapi.yaml"));
  HttpReply reply = client_.Send(call);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.header("content-type"), "application/yaml");
  EXPECT_EQ(reply.body, expected.str());
  EXPECT_EQ(reply.body.rfind("openapi: 3.", 0), 0u);
  call.method = "PUT";
  EXPECT_EQ(client_.Send(call).status, 405);
}

TEST_F(RestTest, PortInUseFailsToStartWithAClearMessage) {
  RestOptions options = Options();
  options.listen = "127.0.0.1:" + std::to_string(server_->port());
  auto second = RestServer::Start(options, *engine_, Logger());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().message(), "cannot start the REST server on " + options.listen + ": cannot bind to " +
                                           options.listen + ": 98 (Address already in use)");
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

TEST_F(RestTest, BadOptionsAreRefused) {
  auto refused = [&](RestOptions options) {
    auto started = RestServer::Start(options, *engine_, Logger());
    return started.ok() ? std::string() : started.status().message();
  };
  RestOptions options = Options();
  options.threads = 0;
  EXPECT_EQ(refused(options), "REST threads must be between 1 and 1024");
  options = Options();
  options.listen = "not-a-port";
  EXPECT_NE(refused(options).find("cannot start the REST server on not-a-port"), std::string::npos);
  options = Options();
  options.tls_cert = dir_.sub("cert.pem");
  EXPECT_NE(refused(options).find("no REST listening port ends in 's'"), std::string::npos);
  options = Options();
  options.listen = "127.0.0.1:0s";
  EXPECT_NE(refused(options).find("no certificate"), std::string::npos);
  options = Options();
  options.tokens = {""};
  EXPECT_EQ(refused(options), "a REST token is empty");
  options = Options();
  options.cors_origins = {"https://app.example.com/"};
  EXPECT_NE(refused(options).find("a CORS origin must be scheme://host[:port] without a path"), std::string::npos);
}

TEST_F(RestTest, TlsServesHttps) {
  const std::string key = dir_.sub("key.pem"), cert = dir_.sub("cert.pem"), both = dir_.sub("both.pem");
  const std::string command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                              " -out " + cert + " >/dev/null 2>&1 && cat " + cert + " " + key + " > " + both;
  ASSERT_EQ(std::system(command.c_str()), 0) << "openssl req failed";
  RestOptions options = Options();
  options.listen = "127.0.0.1:0s";
  options.tls_cert = both;
  options.tls_compat_dir = TWINS_TLS_COMPAT_DIR;
  auto started = RestServer::Start(options, *engine_, Logger());
  ASSERT_TRUE(started.ok()) << started.status().message();
  client_.Disconnect();
  server_ = std::move(started).value();
  scheme_ = "https";
  ASSERT_EQ(Url("/").rfind("https://", 0), 0u);
  EXPECT_JSON_REPLY(Put("d", R"j({"data":{"secure":true}})j"), 200,
                    R"j({"twin_id":"dev1","document_name":"d","version":1,"data":{"secure":true}})j");
}

TEST_F(RestTest, TwinLimitIsForbiddenWithFigures) {
  Limits limits;
  limits.max_twins = 1;
  OpenEngine(limits);
  Start(Options());
  ASSERT_EQ(Put("d", R"j({"data":{}})j").status, 200);
  EXPECT_JSON_REPLY(Call("PUT", DocPath("dev2", "d"), R"j({"data":{}})j"), 403,
                    R"j({"type":"quotas_exceeded","details":[{"resource":"twins","quota":1,"current":1}],)j"
                    R"j("message":"quota exceeded: twins is limited to 1"})j");
  EXPECT_EQ(Call("DELETE", TwinPath("dev1")).status, 204);
  EXPECT_EQ(Call("PUT", DocPath("dev2", "d"), R"j({"data":{}})j").status, 200);
}

// Below the free-space reserve: writes are 507 with Scaleway's out_of_stock type (the SDKs
// raise OutOfStockError), reads and deletions answer as usual.
TEST_F(RestTest, DiskBelowReserveIsInsufficientStorageWhileReadsAndDeletesWork) {
  Start(Options());
  ASSERT_EQ(Put("d", R"j({"data":{"a":1}})j").status, 200);
  client_.Disconnect();
  server_.reset();
  engine_.reset();
  RocksDbOptions options;
  options.path = dir_.sub("db");
  options.min_free_bytes = uint64_t{1} << 60;
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  OpenEngineOver(std::move(store).value());
  HttpReply refused = Put("d", R"j({"data":{"a":2}})j");
  EXPECT_EQ(refused.status, 507);
  EXPECT_EQ(refused.header("content-type"), "application/json");
  EXPECT_EQ(refused.body.rfind(
                R"j({"type":"out_of_stock","resource":"disk_space","min_free_mb":1099511627776,"free_mb":)j", 0),
            0u)
      << refused.body;
  EXPECT_NE(refused.body.find(R"j("message":"not enough free disk space for the database: writes that add data are )j"
                              R"j(refused while less than 1099511627776 MiB are free"})j"),
            std::string::npos)
      << refused.body;
  EXPECT_EQ(Call("PATCH", DocPath("dev1", "new"), R"j({"data":{}})j").status, 507);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 200);
  EXPECT_EQ(Call("DELETE", DocPath("dev1", "d")).status, 204);
  EXPECT_EQ(Call("DELETE", TwinPath("dev1")).status, 204);
  EXPECT_EQ(Logged().find("internal error"), std::string::npos) << Logged();
}

}  // namespace
}  // namespace twins
