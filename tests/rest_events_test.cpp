// The change stream (GET .../twin-events, server-sent events) and the document history
// (?version=N, Last-Modified): a real RestServer over a real engine and RocksDB, real HTTP
// clients (libcurl, and a raw socket for a client that stops reading).
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "metrics/twins_metrics.hpp"
#include "rest/rest_server.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/sse_client.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using test::HttpCall;
using test::HttpClient;
using test::HttpReply;
using test::SseClient;
using test::SseEvent;

constexpr char kToken[] = "6a1f4e0c-2a4b-4f4e-9a53-2b6c1c3a9d11";
constexpr char kEvents[] = "/iot/v1/regions/fr-par/twin-events";

std::string DocPath(const std::string& twin, const std::string& doc) {
  return "/iot/v1/regions/fr-par/twins/" + twin + "/documents/" + doc;
}

// The event's data without its "time", which must be RFC 3339 UTC with milliseconds.
std::string WithoutTime(const std::string& data) {
  static const std::regex kTime(R"re("time":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)",)re");
  std::smatch match;
  if (!std::regex_search(data, match, kTime)) return "no time in " + data;
  return match.prefix().str() + match.suffix().str();
}

uint64_t Seq(const SseEvent& event) { return std::stoull(event.id); }

class RestEventsTest : public testing::Test {
 protected:
  // The members go in reverse order: client, server, engine, metrics, then the directory.
  void SetUp() override { Open(64 << 20, Options()); }

  static RestOptions Options() {
    RestOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.max_streams = 4;
    options.tokens = {kToken};
    options.stream_keep_alive_ms = 200;  // a client that left is noticed soon
    return options;
  }

  // Puts ~200-byte documents until the log's retention has dropped its first entries (FIFO
  // retention drops whole files, after a flush, in the background); how many were put.
  uint64_t WriteUntilRetentionDrops() {
    const std::string data = R"({"pad":")" + std::string(200, 'x') + R"("})";
    uint64_t written = 0;
    while (engine_->Changes().oldest <= 2 && written < 100000) {
      EXPECT_EQ(Put("d", data).status, 200);
      ++written;
    }
    return written;
  }

  void Open(uint64_t changelog_bytes, RestOptions options) {
    client_.Disconnect();
    server_.reset();
    engine_.reset();
    RocksDbOptions store;
    store.path = dir_.sub("db");
    store.changelog_bytes = changelog_bytes;
    auto opened = OpenRocksDbStore(store);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    engine_ = std::make_unique<Engine>(std::move(opened).value(), Limits());
    Start(options);
  }

  void Start(RestOptions options) {
    client_.Disconnect();
    server_.reset();
    options.metrics = &metrics_;
    auto started = RestServer::Start(options, *engine_, {});
    ASSERT_TRUE(started.ok()) << started.status().message();
    server_ = std::move(started).value();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(server_->port()) + path;
  }

  HttpReply Call(const std::string& method, const std::string& path, const std::string& body = {},
                 std::vector<std::string> headers = {}) {
    return CallWith(client_, method, path, body, std::move(headers));
  }
  // The same on another client (another connection, e.g. from another thread).
  HttpReply CallWith(HttpClient& client, const std::string& method, const std::string& path,
                     const std::string& body = {}, std::vector<std::string> headers = {}) {
    HttpCall call;
    call.method = method;
    call.url = Url(path);
    call.headers = {std::string("X-Auth-Token: ") + kToken, "Content-Type: application/json", "Expect:"};
    call.headers.insert(call.headers.end(), headers.begin(), headers.end());
    call.send_body = !body.empty();
    call.body = body;
    return client.Send(call);
  }

  HttpReply Put(const std::string& doc, const std::string& data, const std::string& twin = "dev1") {
    return Call("PUT", DocPath(twin, doc), R"({"data":)" + data + "}");
  }

  // A stream of the events endpoint (`query` starts with '?'), with the token.
  std::unique_ptr<SseClient> Stream(const std::string& query = "", std::vector<std::string> headers = {}) {
    headers.push_back(std::string("X-Auth-Token: ") + kToken);
    return std::make_unique<SseClient>(Url(kEvents + query), std::move(headers));
  }
  std::unique_ptr<SseClient> OpenStream(const std::string& query = "", std::vector<std::string> headers = {}) {
    auto stream = Stream(query, std::move(headers));
    EXPECT_TRUE(stream->WaitOpen()) << stream->status() << " " << stream->body();
    return stream;
  }

  // A write as the MQTT side makes it.
  void MqttPut(const std::string& doc, const std::string& body) {
    auto request = ParseWriteRequest(body, engine_->limits());
    ASSERT_TRUE(request.ok()) << request.status().message();
    WriteContext context;
    context.source = "mqtt";
    context.origin = "dev1";
    ASSERT_TRUE(engine_->Put("dev1", doc, *request, context).ok());
  }

  std::string Metric(const std::string& name) {
    const std::string text = metrics_.registry().RenderPrometheus();
    const size_t at = text.find("\n" + name + " ");
    if (at == std::string::npos) return "absent";
    const size_t start = at + name.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
  }

  test::TempDir dir_;
  metrics::TwinsMetrics metrics_{"test"};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<RestServer> server_;
  HttpClient client_;
};

// The 400 a bad stream request gets, before any stream starts.
#define EXPECT_STREAM_REFUSED(stream, code, json)                          \
  do {                                                                     \
    const std::unique_ptr<SseClient> held_ = (stream);                     \
    SseClient& s_ = *held_;                                                \
    ASSERT_TRUE(s_.WaitEnd());                                             \
    EXPECT_EQ(s_.status(), code);                                          \
    EXPECT_EQ(s_.body(), json);                                            \
    EXPECT_EQ(s_.header("content-type"), "application/json") << s_.body(); \
  } while (0)

std::string BadArgument(const std::string& argument, const std::string& reason, const std::string& help) {
  return R"j({"type":"invalid_arguments","message":"invalid argument(s)","details":[{"argument_name":")j" + argument +
         R"j(","reason":")j" + reason + R"j(","help_message":")j" + help + R"j("}]})j";
}

// ---- live events ---------------------------------------------------------------------------

TEST_F(RestEventsTest, PutPatchDeleteAndDeleteAllAreStreamedInOrder) {
  auto stream = OpenStream();
  EXPECT_EQ(stream->status(), 200);
  EXPECT_EQ(stream->header("content-type"), "text/event-stream");
  EXPECT_EQ(stream->header("cache-control"), "no-cache");
  ASSERT_EQ(Put("desired", R"({"temp":21.5,"name":"a \"b\"\n"})").status, 200);
  ASSERT_EQ(Call("PATCH", DocPath("dev1", "desired"), R"({"data":{"temp":null,"on":true}})").status, 200);
  ASSERT_EQ(Call("DELETE", DocPath("dev1", "desired")).status, 204);
  ASSERT_EQ(Put("b", "{}").status, 200);
  ASSERT_EQ(Put("a", "[1]").status, 400);  // refused: no event
  ASSERT_EQ(Put("a", R"({"x":[1,2]})").status, 200);
  ASSERT_EQ(Call("DELETE", "/iot/v1/regions/fr-par/twins/dev1").status, 204);

  const std::vector<SseEvent> events = stream->WaitEvents(7);
  ASSERT_EQ(events.size(), 7u) << stream->body();
  const std::vector<std::string> expected = {
      R"({"seq":1,"twin_id":"dev1","document_name":"desired","operation":"put","source":"rest","version":1,)"
      R"("data":{"temp":21.5,"name":"a \"b\"\n"}})",
      R"({"seq":2,"twin_id":"dev1","document_name":"desired","operation":"patch","source":"rest","version":2,)"
      R"("data":{"name":"a \"b\"\n","on":true}})",
      R"({"seq":3,"twin_id":"dev1","document_name":"desired","operation":"delete","source":"rest","version":2})",
      R"({"seq":4,"twin_id":"dev1","document_name":"b","operation":"put","source":"rest","version":1,"data":{}})",
      R"({"seq":5,"twin_id":"dev1","document_name":"a","operation":"put","source":"rest","version":1,)"
      R"("data":{"x":[1,2]}})",
      R"({"seq":6,"twin_id":"dev1","document_name":"a","operation":"delete","source":"rest","version":1})",
      R"({"seq":7,"twin_id":"dev1","document_name":"b","operation":"delete","source":"rest","version":1})",
  };
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].event, "change");
    EXPECT_EQ(events[i].id, std::to_string(i + 1));
    EXPECT_EQ(WithoutTime(events[i].data), expected[i]);
  }
  EXPECT_EQ(Metric("twins_rest_stream_events_total"), "7");
  EXPECT_EQ(Metric("twins_rest_streams_open"), "1");
}

TEST_F(RestEventsTest, MqttWritesAreStreamedWithTheirSourceAndOddNamesEscaped) {
  auto stream = OpenStream();
  MqttPut("current", R"({"data":{"t":1}})");
  ASSERT_EQ(Put("d", "{}", "tw%22in%5C%C3%A9").status, 200);  // tw"in\é
  const std::vector<SseEvent> events = stream->WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(WithoutTime(events[0].data),
            R"({"seq":1,"twin_id":"dev1","document_name":"current","operation":"put","source":"mqtt",)"
            R"("version":1,"data":{"t":1}})");
  EXPECT_EQ(WithoutTime(events[1].data),
            "{\"seq\":2,\"twin_id\":\"tw\\\"in\\\\\xC3\xA9\",\"document_name\":\"d\",\"operation\":\"put\","
            "\"source\":\"rest\",\"version\":1,\"data\":{}}");
}

TEST_F(RestEventsTest, WithoutResumptionPointOnlyLaterChangesCome) {
  ASSERT_EQ(Put("before", "{}").status, 200);
  auto stream = OpenStream();
  ASSERT_EQ(Put("after", "{}").status, 200);
  const std::vector<SseEvent> events = stream->WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "2");
  EXPECT_NE(events[0].data.find(R"("document_name":"after")"), std::string::npos);
}

TEST_F(RestEventsTest, FiltersKeepOneTwinOrOneDocument) {
  auto twin = OpenStream("?twin_id=dev%202");
  auto doc = OpenStream("?document_name=desired");
  auto both = OpenStream("?twin_id=dev1&document_name=desired");
  ASSERT_EQ(Put("desired", "{}", "dev%202").status, 200);   // 1: twin, doc
  ASSERT_EQ(Put("reported", "{}", "dev%202").status, 200);  // 2: twin
  ASSERT_EQ(Put("reported", "{}").status, 200);             // 3: none
  ASSERT_EQ(Put("desired", "{}").status, 200);              // 4: doc, both
  ASSERT_EQ(Put("last", "{}", "dev%202").status, 200);      // 5: twin

  const auto ids = [](const std::vector<SseEvent>& events) {
    std::string out;
    for (const SseEvent& event : events) out += event.id + ",";
    return out;
  };
  EXPECT_EQ(ids(twin->WaitEvents(3)), "1,2,5,");
  EXPECT_EQ(ids(doc->WaitEvents(2)), "1,4,");
  EXPECT_EQ(ids(both->WaitEvents(1)), "4,");
  EXPECT_NE(twin->events()[0].data.find(R"("twin_id":"dev 2")"), std::string::npos);
}

TEST_F(RestEventsTest, BadFiltersAreInvalidArguments) {
  EXPECT_STREAM_REFUSED(Stream("?twin_id=a%2Bb"), 400,
                        BadArgument("twin_id", "constraint", "twin id cannot contain '/', '+', '#' or NUL"));
  EXPECT_STREAM_REFUSED(Stream("?twin_id="), 400,
                        BadArgument("twin_id", "constraint", "twin id must be 1 to 128 bytes long"));
  EXPECT_STREAM_REFUSED(Stream("?twin_id=%zz"), 400,
                        BadArgument("twin_id", "format", "the value has an invalid percent-encoding"));
  EXPECT_STREAM_REFUSED(Stream("?document_name=_secret"), 400,
                        BadArgument("document_name", "constraint",
                                    "document names starting with '_' are reserved (only _config exists)"));
  EXPECT_EQ(Metric("twins_rest_streams_open"), "0");
}

// ---- resumption ----------------------------------------------------------------------------

// A writer puts versions of dev1/d before, while and after streams resume: each must see
// every version after its resumption point exactly once, in order.
TEST_F(RestEventsTest, ResumptionReplaysThenGoesLiveWithNoGapOrDuplicateWhileWritesGoOn) {
  constexpr int kAfterOpen = 200;  // writes the writer makes once every stream is open
  std::atomic<int> written{0};
  std::atomic<int> stop_at{1 << 30};
  std::thread writer([&] {
    HttpClient client;
    for (int i = 1; i <= stop_at.load(); ++i) {
      const HttpReply reply = CallWith(client, "PUT", DocPath("dev1", "d"),
                                       R"({"data":{"i":)" + std::to_string(i) + "}}");
      if (reply.status != 200) {
        ADD_FAILURE() << reply.status << " " << reply.error << " " << reply.body;
        stop_at = 0;
        return;
      }
      written = i;
    }
  });
  while (written.load() < 50 && stop_at.load() != 0) std::this_thread::yield();
  auto by_header = OpenStream("", {"Last-Event-ID: 20"});
  auto by_query = OpenStream("?since=30&twin_id=dev1");
  auto header_wins = OpenStream("?since=5", {"Last-Event-ID: 45"});
  stop_at = written.load() + kAfterOpen;
  writer.join();
  const int total = stop_at.load();
  ASSERT_GT(total, 50 + kAfterOpen - 1);

  const auto check = [&](SseClient& stream, int after) {
    const std::vector<SseEvent> events = stream.WaitEvents(total - after);
    ASSERT_EQ(events.size(), static_cast<size_t>(total - after)) << "after " << after;
    for (size_t i = 0; i < events.size(); ++i) {
      const int version = after + 1 + static_cast<int>(i);
      ASSERT_EQ(Seq(events[i]), static_cast<uint64_t>(version));  // one write, one seq
      ASSERT_NE(events[i].data.find(R"("version":)" + std::to_string(version) + R"(,"data":{"i":)" +
                                    std::to_string(version) + "}}"),
                std::string::npos)
          << events[i].data;
    }
  };
  check(*by_header, 20);
  check(*by_query, 30);
  check(*header_wins, 45);
  ASSERT_EQ(Put("d", R"({"i":0})").status, 200);
  EXPECT_EQ(by_header->WaitEvents(total - 20 + 1).back().id, std::to_string(total + 1));
}

TEST_F(RestEventsTest, ResumingAtTheNewestChangeSendsOnlyLaterOnes) {
  ASSERT_EQ(Put("d", "{}").status, 200);
  ASSERT_EQ(Put("d", "{}").status, 200);
  auto stream = OpenStream("", {"Last-Event-ID: 2"});
  ASSERT_EQ(Put("d", "{}").status, 200);
  const std::vector<SseEvent> events = stream->WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].id, "3");
}

TEST_F(RestEventsTest, ResumptionBeyondRetentionStartsWithResetThenLive) {
  Open(4096, Options());  // a tiny change log: old entries go
  const uint64_t total = WriteUntilRetentionDrops();
  const ChangeBounds bounds = engine_->Changes();
  ASSERT_GT(bounds.oldest, 2u);
  ASSERT_EQ(bounds.newest, total);
  const std::string newest = std::to_string(total);

  auto stream = OpenStream("", {"Last-Event-ID: 1"});
  ASSERT_EQ(Put("d", "{}").status, 200);
  std::vector<SseEvent> events = stream->WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "reset");
  EXPECT_EQ(events[0].id, newest);
  EXPECT_EQ(events[0].data, R"({"oldest_seq":)" + std::to_string(bounds.oldest) + R"(,"current_seq":)" + newest + "}");
  EXPECT_EQ(events[1].event, "change");
  EXPECT_EQ(events[1].id, std::to_string(total + 1));

  // The oldest retained ones are still replayed; an id from another database is a reset too.
  auto retained = OpenStream("?since=" + std::to_string(bounds.oldest - 1));
  EXPECT_EQ(retained->WaitEvents(1).at(0).id, std::to_string(bounds.oldest));
  auto future = OpenStream("", {"Last-Event-ID: " + std::to_string(total + 1000)});
  events = future->WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "reset");
}

// As mosquitto-twins-admin import leaves a database: documents without change-log entries,
// the log going on after the exported seq.
TEST_F(RestEventsTest, OnAnImportedDatabaseTheExportedSeqGoesOnAndOthersReset) {
  client_.Disconnect();
  server_.reset();
  engine_.reset();
  {
    auto store = OpenRocksDbStore(dir_.sub("imported"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->StartChangeLogAfter(41).ok());
    ASSERT_TRUE((*store)->Put("dev1", "d", {3, R"({"a":1})", 1764266400123}).ok());
    ASSERT_TRUE((*store)->Sync().ok());
  }
  auto opened = OpenRocksDbStore(dir_.sub("imported"));
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  engine_ = std::make_unique<Engine>(std::move(opened).value(), Limits());
  Start(Options());

  auto at_export = OpenStream("", {"Last-Event-ID: 41"});
  auto older = OpenStream("", {"Last-Event-ID: 40"});
  auto later = OpenStream("", {"Last-Event-ID: 45"});
  ASSERT_EQ(Put("d", "{}").status, 200);
  std::vector<SseEvent> events = at_export->WaitEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "change");
  EXPECT_EQ(events[0].id, "42");
  EXPECT_NE(events[0].data.find(R"("version":4,)"), std::string::npos) << events[0].data;
  events = older->WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "reset");
  EXPECT_EQ(events[0].data, R"({"oldest_seq":42,"current_seq":41})");
  EXPECT_EQ(events[1].id, "42");
  events = later->WaitEvents(2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].event, "reset");
  EXPECT_EQ(events[1].id, "42");
}

TEST_F(RestEventsTest, BadResumptionPointsAreInvalidArguments) {
  const std::string header_help = "Last-Event-ID must be an event id, a whole number up to 2^63";
  for (const char* bad : {"abc", "-1", "1e3", "+5", "9223372036854775809", "99999999999999999999999"}) {
    EXPECT_STREAM_REFUSED(Stream("", {std::string("Last-Event-ID: ") + bad}), 400,
                          BadArgument("Last-Event-ID", "format", header_help));
  }
  const std::string query_help = "since must be an event id, a whole number up to 2^63";
  for (const char* bad : {"x", "-2", "%zz", "", "1.5"}) {
    EXPECT_STREAM_REFUSED(Stream(std::string("?since=") + bad), 400, BadArgument("since", "format", query_help));
  }
  // 2^63 itself is a resumption point (beyond the log: a reset).
  auto edge = OpenStream("", {"Last-Event-ID: 9223372036854775808"});
  ASSERT_EQ(Put("d", "{}").status, 200);
  EXPECT_EQ(edge->WaitEvents(1).at(0).event, "reset");
}

// ---- slow, stalled and too many clients ----------------------------------------------------

// A client on a raw socket that reads the stream's head, then stops reading for a while.
class RawStream {
 public:
  RawStream(int port, const std::string& query) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;  // a small window: the server's writes block soon
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    sockaddr_in address = {};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) return;
    const std::string request = std::string("GET ") + kEvents + query +
                                " HTTP/1.1\r\nHost: x\r\nX-Auth-Token: " + kToken + "\r\n\r\n";
    (void)send(fd_, request.data(), request.size(), 0);
  }
  ~RawStream() { close(fd_); }
  RawStream(const RawStream&) = delete;
  RawStream& operator=(const RawStream&) = delete;

  // Reads until `text` came or the connection ended.
  std::string ReadUntil(const std::string& text) {
    char buffer[65536];
    while (received_.find(text) == std::string::npos) {
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) break;
      received_.append(buffer, static_cast<size_t>(n));
    }
    return received_;
  }
  // Reads until the server closes the connection.
  std::string ReadToEnd() {
    char buffer[65536];
    ssize_t n;
    while ((n = recv(fd_, buffer, sizeof(buffer), 0)) > 0) received_.append(buffer, static_cast<size_t>(n));
    return received_;
  }

 private:
  int fd_ = -1;
  std::string received_;
};

TEST_F(RestEventsTest, StalledReaderGetsOverflowOnceBehindAndResumesFromItsCursor) {
  RestOptions options = Options();
  options.stream_max_lag = 16;
  options.request_timeout_ms = 120000;  // the blocked write must outlast the writes, even under TSan
  Start(options);
  RawStream raw(server_->port(), "?twin_id=dev1");
  ASSERT_NE(raw.ReadUntil(": stream open\n\n").find("200 OK"), std::string::npos);
  // ~10 MB of events while the client reads nothing: more than the socket buffers hold, so
  // the stream blocks; writers do not wait for it.
  const std::string body = R"({"data":{"pad":")" + std::string(16000, 'x') + R"("}})";
  auto request = ParseWriteRequest(body, engine_->limits());
  ASSERT_TRUE(request.ok());
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(engine_->Put("dev1", "d", *request).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));

  const std::string received = raw.ReadToEnd();
  const size_t overflow = received.find("event: overflow\n");
  ASSERT_NE(overflow, std::string::npos) << received.substr(received.size() - std::min<size_t>(received.size(), 300));
  const std::regex kOverflow(
      R"re(id: (\d+)\nevent: overflow\ndata: \{"cursor_seq":(\d+),"current_seq":(\d+)\}\n\n$)re");
  std::smatch match;
  const std::string tail = received.substr(overflow - std::min<size_t>(overflow, 40));
  ASSERT_TRUE(std::regex_search(tail, match, kOverflow)) << tail;
  const uint64_t cursor = std::stoull(match[2].str());
  EXPECT_EQ(match[1].str(), match[2].str());
  EXPECT_GT(std::stoull(match[3].str()), cursor + 16);  // more than max_lag behind
  EXPECT_LE(std::stoull(match[3].str()), 600u);
  // Every change up to the cursor came, once, in order.
  const std::regex kId(R"re(\nid: (\d+)\nevent: change\n)re");
  uint64_t expected = 1;
  for (auto it = std::sregex_iterator(received.begin(), received.end(), kId); it != std::sregex_iterator(); ++it) {
    ASSERT_EQ(std::stoull((*it)[1].str()), expected);
    ++expected;
  }
  EXPECT_EQ(expected - 1, cursor);

  auto resumed = OpenStream("", {"Last-Event-ID: " + std::to_string(cursor)});
  const std::vector<SseEvent> rest = resumed->WaitEvents(600 - cursor);
  ASSERT_EQ(rest.size(), 600 - cursor);
  EXPECT_EQ(rest.front().id, std::to_string(cursor + 1));
  EXPECT_EQ(rest.back().id, "600");
}

TEST_F(RestEventsTest, ReaderThatTakesNothingIsDroppedAfterTheWriteTimeout) {
  RestOptions options = Options();
  options.request_timeout_ms = 300;
  Start(options);
  RawStream raw(server_->port(), "");
  raw.ReadUntil(": stream open\n\n");
  ASSERT_EQ(Metric("twins_rest_streams_open"), "1");
  const std::string body = R"({"data":{"pad":")" + std::string(16000, 'x') + R"("}})";
  auto request = ParseWriteRequest(body, engine_->limits());
  ASSERT_TRUE(request.ok());
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(engine_->Put("dev1", "d", *request).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Metric("twins_rest_streams_open") != "0" && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(Metric("twins_rest_streams_open"), "0");
}

TEST_F(RestEventsTest, StreamsBeyondTheLimitGet503WhileOrdinaryRequestsStillServed) {
  std::vector<std::unique_ptr<SseClient>> streams;
  for (int i = 0; i < 4; ++i) streams.push_back(OpenStream());
  auto refused = Stream();
  ASSERT_TRUE(refused->WaitEnd());
  EXPECT_EQ(refused->status(), 503);
  EXPECT_EQ(refused->header("retry-after"), "5");
  EXPECT_EQ(refused->body(),
            R"({"type":"service_unavailable","message":"too many event streams are open; retry later"})");
  EXPECT_EQ(Metric("twins_rest_streams_refused_total"), "1");

  // Both ordinary threads are free: two clients at once, each on its own kept-alive connection.
  HttpClient other;
  ASSERT_EQ(Put("d", "{}").status, 200);
  HttpCall get;
  get.url = Url(DocPath("dev1", "d"));
  get.headers = {std::string("X-Auth-Token: ") + kToken};
  EXPECT_EQ(other.Send(get).status, 200);
  EXPECT_EQ(Call("GET", DocPath("dev1", "d")).status, 200);
  EXPECT_EQ(other.Send(get).status, 200);
  for (auto& stream : streams) EXPECT_EQ(stream->WaitEvents(1).size(), 1u);

  // A client that leaves gives its slot back (noticed at the next keep-alive).
  streams.pop_back();
  std::unique_ptr<SseClient> again;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    again = Stream();
  } while (!again->WaitOpen() && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(again->status(), 200);
}

TEST_F(RestEventsTest, IdleStreamGetsKeepAliveComments) {
  auto stream = OpenStream();
  EXPECT_TRUE(stream->WaitComment("keep-alive"));
  EXPECT_TRUE(stream->events().empty());
}

TEST_F(RestEventsTest, StoppingTheServerEndsStreamsPromptly) {
  RestOptions options = Options();
  options.stream_keep_alive_ms = 60000;
  Start(options);
  auto first = OpenStream();
  auto second = OpenStream("?twin_id=nobody");
  const auto start = std::chrono::steady_clock::now();
  server_.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(first->WaitEnd(std::chrono::seconds(1)));
  EXPECT_TRUE(second->WaitEnd(std::chrono::seconds(1)));
}

// ---- access ----------------------------------------------------------------------------------

TEST_F(RestEventsTest, StreamsNeedATokenAndGetCorsHeaders) {
  auto anonymous = std::make_unique<SseClient>(Url(kEvents), std::vector<std::string>{});
  ASSERT_TRUE(anonymous->WaitEnd());
  EXPECT_EQ(anonymous->status(), 401);
  EXPECT_NE(anonymous->body().find(R"("type":"denied_authentication")"), std::string::npos);
  auto wrong = std::make_unique<SseClient>(Url(kEvents), std::vector<std::string>{"X-Auth-Token: nope"});
  ASSERT_TRUE(wrong->WaitEnd());
  EXPECT_EQ(wrong->status(), 401);

  HttpReply post = Call("POST", kEvents, "{}");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("allow"), "GET");
  EXPECT_EQ(Call("GET", "/iot/v1/regions/nl-ams/twin-events").status, 404);

  RestOptions options = Options();
  options.cors_origins = {"https://app.example.com"};
  Start(options);
  auto bearer = OpenStream("", {"Origin: https://app.example.com"});
  EXPECT_EQ(bearer->header("access-control-allow-origin"), "https://app.example.com");
}

// ---- history and Last-Modified ---------------------------------------------------------------

TEST_F(RestEventsTest, GetAtVersionReturnsTheDocumentAsItWas) {
  ASSERT_EQ(Put("d", R"({"a":1})").status, 200);
  ASSERT_EQ(Call("PATCH", DocPath("dev1", "d"), R"({"data":{"b":2}})").status, 200);
  ASSERT_EQ(Put("d", R"({"c":3})").status, 200);
  const std::string base = DocPath("dev1", "d") + "?version=";
  HttpReply v1 = Call("GET", base + "1");
  EXPECT_EQ(v1.status, 200);
  EXPECT_EQ(v1.body, R"({"twin_id":"dev1","document_name":"d","version":1,"data":{"a":1}})");
  EXPECT_EQ(v1.header("etag"), "\"1\"");
  EXPECT_EQ(Call("GET", base + "2").body, R"({"twin_id":"dev1","document_name":"d","version":2,"data":{"a":1,"b":2}})");
  EXPECT_EQ(Call("GET", base + "3").body, R"({"twin_id":"dev1","document_name":"d","version":3,"data":{"c":3}})");
  HttpReply future = Call("GET", base + "4");
  EXPECT_EQ(future.status, 404);
  EXPECT_NE(future.body.find(R"("type":"not_found","resource":"twin_document","resource_id":"d")"), std::string::npos);
  EXPECT_EQ(Call("GET", DocPath("dev1", "none") + "?version=1").status, 404);
}

TEST_F(RestEventsTest, GetAtVersionTooOldIsNotFoundNamingTheOldestRetained) {
  Open(4096, Options());
  WriteUntilRetentionDrops();
  const ChangeBounds bounds = engine_->Changes();
  ASSERT_GT(bounds.oldest, 2u);
  HttpReply old = Call("GET", DocPath("dev1", "d") + "?version=1");
  EXPECT_EQ(old.status, 404);
  EXPECT_NE(old.body.find(R"("type":"not_found")"), std::string::npos);
  EXPECT_NE(old.body.find(std::to_string(bounds.oldest)), std::string::npos) << old.body;
  EXPECT_EQ(Call("GET", DocPath("dev1", "d") + "?version=" + std::to_string(bounds.oldest)).status, 200);
}

TEST_F(RestEventsTest, BadVersionIsInvalidArgument) {
  ASSERT_EQ(Put("d", "{}").status, 200);
  const std::string help = BadArgument("version", "format", "version must be a document version, 1 to 2^53");
  for (const char* bad : {"0", "-1", "abc", "1.5", "01", "", "9007199254740993", "%zz"}) {
    HttpReply reply = Call("GET", DocPath("dev1", "d") + "?version=" + bad);
    EXPECT_EQ(reply.status, 400) << bad;
    EXPECT_EQ(reply.body, help) << bad;
  }
}

TEST_F(RestEventsTest, DocumentRepliesCarryLastModified) {
  const time_t before = time(nullptr);
  HttpReply put = Put("d", "{}");
  HttpReply patch = Call("PATCH", DocPath("dev1", "d"), R"({"data":{"a":1}})");
  HttpReply get = Call("GET", DocPath("dev1", "d"));
  HttpReply old = Call("GET", DocPath("dev1", "d") + "?version=1");
  const time_t after = time(nullptr) + 1;  // time() is the coarse clock: it may lag the engine's by a tick
  for (const HttpReply* reply : {&put, &patch, &get, &old}) {
    ASSERT_EQ(reply->status, 200);
    const time_t modified = curl_getdate(reply->header("last-modified").c_str(), nullptr);
    EXPECT_GE(modified, before) << reply->header("last-modified");
    EXPECT_LE(modified, after);
    EXPECT_NE(reply->header("last-modified").find(" GMT"), std::string::npos);
  }
  EXPECT_FALSE(Call("GET", DocPath("dev1", "none")).has("last-modified"));
  EXPECT_FALSE(Call("DELETE", DocPath("dev1", "d")).has("last-modified"));
}

// A 304 carries the Last-Modified of the version it stands for, as its 200 would.
TEST_F(RestEventsTest, NotModifiedRepliesCarryTheLastModifiedOfTheirVersion) {
  ASSERT_EQ(Put("d", "{}").status, 200);
  ASSERT_EQ(Call("PATCH", DocPath("dev1", "d"), R"({"data":{"a":1}})").status, 200);
  const std::string old_path = DocPath("dev1", "d") + "?version=1";
  const HttpReply old = Call("GET", old_path);
  const HttpReply current = Call("GET", DocPath("dev1", "d"));
  const HttpReply old_same = Call("GET", old_path, {}, {"If-None-Match: \"1\""});
  const HttpReply current_same = Call("GET", DocPath("dev1", "d"), {}, {"If-None-Match: \"2\""});
  EXPECT_EQ(old_same.status, 304);
  EXPECT_EQ(old_same.header("etag"), "\"1\"");
  EXPECT_EQ(old_same.header("last-modified"), old.header("last-modified"));
  EXPECT_EQ(current_same.status, 304);
  EXPECT_EQ(current_same.header("last-modified"), current.header("last-modified"));
  EXPECT_FALSE(old.header("last-modified").empty());
  // Another version's tag: the version asked for, whole.
  const HttpReply old_changed = Call("GET", old_path, {}, {"If-None-Match: \"2\""});
  EXPECT_EQ(old_changed.status, 200);
  EXPECT_EQ(old_changed.body, R"({"twin_id":"dev1","document_name":"d","version":1,"data":{}})");
}

}  // namespace
}  // namespace twins
