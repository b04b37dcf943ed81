// GraphiteSender and TsdbObserver against a real carbon-cache (tests/support/carbon_server.hpp)
// and, for the HTTP mode, against a CivetWeb receiver run by the test.
#include "tsdb/graphite.hpp"

#include <civetweb.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "tsdb/observer.hpp"
#include "tests/support/carbon_server.hpp"
#include "tests/support/samples.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::MakeSample;

int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Polls `done` until it holds or `timeout` passes.
bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// Log lines, recorded from any thread.
class LogRecorder {
 public:
  LogFn fn() {
    return [this](LogLevel level, const std::string& line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back((level == LogLevel::kInfo ? "I " : level == LogLevel::kWarning ? "W " : "E ") + line);
    };
  }
  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  size_t Count(const std::string& part) {
    size_t n = 0;
    for (const std::string& line : lines()) n += line.find(part) != std::string::npos ? 1 : 0;
    return n;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

std::string Dump(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& line : lines) out += line + "\n";
  return out;
}

// One carbon-cache for the suite (it takes most of a second to start); tests that stop it
// start it again, and each test writes series of its own.
class GraphiteCarbonTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    carbon_dir_ = new test::TempDir();
    carbon_ = new test::CarbonServer(carbon_dir_->sub("carbon"));
  }
  static void TearDownTestSuite() {
    delete carbon_;
    delete carbon_dir_;
  }
  void SetUp() override {
    std::string error;
    if (!carbon_->running()) {
      ASSERT_TRUE(carbon_->Start(&error)) << error;
    }
  }

  GraphiteOptions Options() {
    GraphiteOptions options;
    options.url = carbon_->url();
    options.min_backoff = 20ms;
    options.max_backoff = 200ms;
    options.io_timeout = 1s;
    options.log = log_.fn();
    return options;
  }

  std::unique_ptr<GraphiteSender> MakeSender(const GraphiteOptions& options) {
    auto sender = GraphiteSender::Create(options);
    EXPECT_TRUE(sender.ok()) << sender.status().message();
    return sender.ok() ? std::move(sender).value() : nullptr;
  }

  static test::TempDir* carbon_dir_;
  static test::CarbonServer* carbon_;
  test::TempDir dir_;
  LogRecorder log_;
};

test::TempDir* GraphiteCarbonTest::carbon_dir_ = nullptr;
test::CarbonServer* GraphiteCarbonTest::carbon_ = nullptr;

TEST_F(GraphiteCarbonTest, SenderStoresExactValuesUnderTheTaggedSeries) {
  auto sender = MakeSender(Options());
  ASSERT_TRUE(sender);
  const int64_t t = UnixNow() - 2;
  sender->Push({MakeSample("dev1", "state", "motor.rpm", 1200, t, {{"site", "paris"}}),
                MakeSample("dev1", "state", "temp", 21.5, t - 1),
                MakeSample("dev 1", "st.ate", "a%2Eb", -0.1, t, {{"room name", "~a;b"}})});

  EXPECT_EQ(
      carbon_->WaitForValue("twins.dev1.state.motor.rpm;document=state;json_path=motor.rpm;site=paris;twin_id=dev1", t),
      1200.0);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.temp;twin_id=dev1;document=state;json_path=temp", t - 1), 21.5);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev%201.st%2Eate.a%2Eb;document=st.ate;json_path=a%2Eb;"
                                  "room%20name=%7Ea%3Bb;twin_id=dev%201",
                                  t),
            -0.1);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 3; }));
  const GraphiteCounters c = sender->counters();
  EXPECT_EQ(c.dropped + c.rejected + c.errors, 0u);
  EXPECT_TRUE(log_.lines().empty()) << Dump(log_.lines());
}

TEST_F(GraphiteCarbonTest, OverlongSeriesIsRejectedAndTheRestOfTheBatchArrives) {
  auto sender = MakeSender(Options());
  ASSERT_TRUE(sender);
  const int64_t t = UnixNow() - 1;
  sender->Push(
      {MakeSample("dev1", "state", std::string(kMaxSeriesBytes, 'k'), 1, t), MakeSample("dev1", "state", "ok", 2, t)});
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.ok;document=state;json_path=ok;twin_id=dev1", t), 2.0);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 1; }));
  EXPECT_EQ(sender->counters().rejected, 1u);
  EXPECT_EQ(log_.Count("W graphite: 1 samples rejected so far"), 1u) << Dump(log_.lines());
}

// A twin, its engine and the observer that pushes its writes through a sender.
class EngineWithPush {
 public:
  EngineWithPush(const std::string& path, GraphiteSender& sender) {
    auto store = OpenRocksDbStore(path);
    EXPECT_TRUE(store.ok()) << store.status().message();
    engine = std::make_unique<Engine>(std::move(store).value(), Limits());
    observer = std::make_unique<TsdbObserver>(sender);
    engine->AddObserver(observer.get());
  }
  // Put or patch.
  void Write(const std::string& doc, const std::string& body, bool patch = false) {
    auto request = ParseWriteRequest(body, Limits());
    EXPECT_TRUE(request.ok()) << request.status().message();
    auto written = patch ? engine->Patch("dev1", doc, request.value()) : engine->Put("dev1", doc, request.value());
    EXPECT_TRUE(written.ok()) << written.status().message();
  }

  std::unique_ptr<Engine> engine;
  std::unique_ptr<TsdbObserver> observer;
};

TEST_F(GraphiteCarbonTest, EngineWritesArePushedAsConfigured) {
  auto sender = MakeSender(Options());
  ASSERT_TRUE(sender);
  EngineWithPush twin(dir_.sub("db"), *sender);
  twin.Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update","_tags":{"source":"test"},)"
                        R"("motor":{"_tsdb_trigger":"on-change","_tags":{"unit":"rpm"}}}}}})");
  twin.Write("other", R"({"data":{"temp":5}})");
  const int64_t t0 = UnixNow();
  twin.Write("state", R"({"data":{"temp":21.5,"on":true,"label":"x","motor":{"rpm":1200},"arr":[1,2.25]}})");
  const int64_t t1 = UnixNow();

  const std::string tags = ";document=state;source=test;twin_id=dev1";
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.temp;json_path=temp" + tags, t0, t1), 21.5);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.on;json_path=on" + tags, t0, t1), 1.0);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.arr.0;json_path=arr.0" + tags, t0, t1), 1.0);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.arr.1;json_path=arr.1" + tags, t0, t1), 2.25);
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.motor.rpm;document=state;json_path=motor.rpm;twin_id=dev1;unit=rpm",
                                  t0, t1),
            1200.0);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 5; })) << sender->counters().sent;

  // on-change: the unchanged rpm is not pushed again; on-update: temp is.
  twin.Write("state", R"({"data":{"temp":22,"motor":{"rpm":1200}}})", true);
  const int64_t t2 = UnixNow();
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.temp;json_path=temp" + tags, t1, t2 + 1, 22.0), 22.0);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 6; }));
  EXPECT_EQ(sender->counters().sent, 6u);
  EXPECT_FALSE(std::filesystem::exists(
      carbon_->WhisperFile("twins.dev1.other.temp;document=other;json_path=temp;twin_id=dev1")));
}

TEST_F(GraphiteCarbonTest, CarbonOutageNeitherBlocksWritesNorLosesQueuedPoints) {
  auto sender = MakeSender(Options());
  ASSERT_TRUE(sender);
  EngineWithPush twin(dir_.sub("db"), *sender);
  twin.Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  const std::string tags = ";document=state;twin_id=dev1";
  int64_t t = UnixNow();
  twin.Write("state", R"({"data":{"before":1}})");
  ASSERT_EQ(carbon_->WaitForValue("twins.dev1.state.before;json_path=before" + tags, t, UnixNow()), 1.0);

  carbon_->Kill();
  const int64_t down_from = UnixNow();
  for (int i = 1; i <= 50; ++i) {
    twin.Write("state", R"({"data":{"during":)" + std::to_string(i) + "}}");
    // Writes go on while the sender fails and retries.
    if (i % 10 == 0) {
      ASSERT_TRUE(WaitFor([&] { return sender->counters().errors >= static_cast<uint64_t>(i / 10); }));
    }
  }
  const int64_t down_until = UnixNow();
  // Every write returned with its point undelivered: none waited on Graphite.
  EXPECT_EQ(sender->counters().sent, 1u) << "a write waited on Graphite";
  ASSERT_TRUE(WaitFor([&] { return sender->counters().errors >= 3; })) << Dump(log_.lines());
  EXPECT_EQ(log_.Count("W graphite: "), 1u) << Dump(log_.lines());
  EXPECT_EQ(log_.Count(carbon_->url() + ": Connection refused; queueing up to 100000 samples"), 1u)
      << Dump(log_.lines());
  EXPECT_EQ(log_.Count("again after"), 0u) << Dump(log_.lines());

  std::string error;
  ASSERT_TRUE(carbon_->Start(&error)) << error;
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.during;json_path=during" + tags, down_from, down_until, 50.0),
            50.0);
  t = UnixNow();
  twin.Write("state", R"({"data":{"after":2}})");
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.state.after;json_path=after" + tags, t, UnixNow()), 2.0);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 52; })) << sender->counters().sent;
  EXPECT_EQ(sender->counters().dropped, 0u);
  // The outage ends once the new connection has lasted io_timeout with everything confirmed.
  EXPECT_TRUE(WaitFor([&] { return log_.lines().size() >= 2; })) << Dump(log_.lines());
  const auto lines = log_.lines();
  ASSERT_EQ(lines.size(), 2u) << Dump(lines);
  EXPECT_EQ(lines[1].rfind("I graphite: pushing to " + carbon_->url() + " again after ", 0), 0u) << lines[1];
  EXPECT_NE(lines[1].find("; 0 samples dropped meanwhile"), std::string::npos) << lines[1];
}

TEST_F(GraphiteCarbonTest, FullQueueDropsTheOldestSamples) {
  carbon_->Kill();
  GraphiteOptions options = Options();
  options.queue_capacity = 3;
  auto sender = MakeSender(options);
  ASSERT_TRUE(sender);
  const int64_t t = UnixNow() - 1;
  auto series = [](const std::string& v) {
    return "twins.dev1.q." + v + ";document=q;json_path=" + v + ";twin_id=dev1";
  };
  sender->Push({MakeSample("dev1", "q", "v0", 0, t)});  // the batch in hand, retried
  ASSERT_TRUE(WaitFor([&] { return sender->counters().errors >= 1; }));
  std::vector<Sample> samples;
  for (int i = 1; i <= 5; ++i) samples.push_back(MakeSample("dev1", "q", "v" + std::to_string(i), i, t));
  sender->Push(std::move(samples));
  EXPECT_EQ(sender->counters().dropped, 2u);
  EXPECT_EQ(sender->counters().queued, 3u);

  std::string error;
  ASSERT_TRUE(carbon_->Start(&error)) << error;
  for (int i : {0, 3, 4, 5}) EXPECT_EQ(carbon_->WaitForValue(series("v" + std::to_string(i)), t), i);
  EXPECT_TRUE(WaitFor([&] { return sender->counters().sent == 4; }));
  EXPECT_EQ(sender->counters().dropped, 2u);
  EXPECT_FALSE(std::filesystem::exists(carbon_->WhisperFile(series("v1"))));
  EXPECT_FALSE(std::filesystem::exists(carbon_->WhisperFile(series("v2"))));
  // The outage ends once the new connection has lasted io_timeout with everything confirmed.
  EXPECT_TRUE(WaitFor([&] {
    const std::vector<std::string> lines = log_.lines();
    return !lines.empty() && lines.back().find("; 2 samples dropped meanwhile") != std::string::npos;
  })) << Dump(log_.lines());
}

TEST_F(GraphiteCarbonTest, DestructorFlushesWhatIsQueued) {
  const int64_t t = UnixNow() - 1;
  {
    GraphiteOptions options = Options();
    options.batch_size = 10;
    auto sender = MakeSender(options);
    ASSERT_TRUE(sender);
    std::vector<Sample> samples;
    for (int i = 0; i < 200; ++i) samples.push_back(MakeSample("dev1", "flush", "v" + std::to_string(i), i, t));
    sender->Push(std::move(samples));
  }
  EXPECT_EQ(carbon_->WaitForValue("twins.dev1.flush.v199;document=flush;json_path=v199;twin_id=dev1", t), 199.0);
}

TEST(GraphiteSenderTest, DestructorGivesUpOnAnUnreachableTargetWithinItsBound) {
  GraphiteOptions options;
  options.url = "tcp://127.0.0.1:" + std::to_string(test::FreePorts(1)[0]);
  options.min_backoff = 5s;
  options.stop_timeout = 300ms;
  auto created = GraphiteSender::Create(options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  std::unique_ptr<GraphiteSender> sender = std::move(created).value();
  sender->Push({MakeSample("dev1", "d", "v", 1, UnixNow())});
  ASSERT_TRUE(WaitFor([&] { return sender->counters().errors == 1; }));
  const auto start = Clock::now();
  sender.reset();
  EXPECT_LT(Clock::now() - start, 1s);
}

TEST(GraphiteSenderTest, SilentTargetDoesNotSlowPushes) {
  // Listens but never accepts nor reads: connections hang, writes stall once buffers fill.
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(silent, 1), 0);
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &len), 0);

  LogRecorder log;
  GraphiteOptions options;
  options.url = "tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  options.io_timeout = 300ms;
  options.stop_timeout = 100ms;
  options.log = log.fn();
  auto created = GraphiteSender::Create(options);
  ASSERT_TRUE(created.ok()) << created.status().message();
  std::unique_ptr<GraphiteSender> sender = std::move(created).value();

  const std::string key(200, 'k');  // ~300 bytes a line: megabytes in all
  // Pushes in a row while the sender delivers nothing: the sender is stuck on the full socket.
  int without_progress = 0, most_without_progress = 0;
  uint64_t last_sent = ~uint64_t{0};
  for (int i = 0; i < 200 && sender->counters().errors == 0; ++i) {
    std::vector<Sample> samples;
    for (int j = 0; j < 100; ++j) samples.push_back(MakeSample("dev1", "d", key + std::to_string(j), i, UnixNow()));
    sender->Push(std::move(samples));
    const uint64_t sent = sender->counters().sent;
    without_progress = sent == last_sent ? without_progress + 1 : 0;
    most_without_progress = std::max(most_without_progress, without_progress);
    last_sent = sent;
    std::this_thread::sleep_for(5ms);  // a steady producer, not a wait for an event
  }
  EXPECT_TRUE(WaitFor([&] { return sender->counters().errors >= 1; })) << "the target never stalled";
  // Pushes went on while the sender was stuck: none waited on the network.
  EXPECT_GE(most_without_progress, 5) << "Push waited on the network";
  EXPECT_EQ(log.Count("W graphite: timed out writing to " + options.url), 1u) << Dump(log.lines());
  const auto start = Clock::now();
  sender.reset();
  EXPECT_LT(Clock::now() - start, 1s);
  close(silent);
}

TEST(GraphiteSenderTest, InvalidOptionsAreRefused) {
  GraphiteOptions options;
  options.url = "tcp://127.0.0.1";
  auto sender = GraphiteSender::Create(options);
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.status().field(), "graphite_url");

  options.url = "tcp://127.0.0.1:2003";
  options.queue_capacity = 0;
  sender = GraphiteSender::Create(options);
  ASSERT_FALSE(sender.ok());
  EXPECT_EQ(sender.status().field(), "queue_capacity");
}

// An HTTP endpoint on 127.0.0.1 that records requests and answers with a chosen status.
class HttpReceiver {
 public:
  struct Request {
    std::string method, uri, authorization, content_type, body;
  };

  HttpReceiver() {
    mg_init_library(0);
    port_ = test::FreePorts(1)[0];
    const std::string ports = "127.0.0.1:" + std::to_string(port_);
    const char* options[] = {"listening_ports", ports.c_str(), "num_threads", "2", nullptr};
    mg_callbacks callbacks{};
    context_ = mg_start(&callbacks, nullptr, options);
    if (context_ != nullptr) mg_set_request_handler(context_, "/metrics", &HttpReceiver::Handle, this);
  }
  ~HttpReceiver() {
    if (context_ != nullptr) mg_stop(context_);
    mg_exit_library();
  }

  bool running() const { return context_ != nullptr; }
  int port() const { return port_; }
  void Answer(int status) { status_ = status; }
  void Reset() {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.clear();
    status_ = 200;
  }
  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  static int Handle(mg_connection* connection, void* self_data) {
    auto* self = static_cast<HttpReceiver*>(self_data);
    const mg_request_info* info = mg_get_request_info(connection);
    Request request;
    request.method = info->request_method;
    request.uri = info->local_uri;
    const char* auth = mg_get_header(connection, "Authorization");
    request.authorization = auth != nullptr ? auth : "";
    const char* type = mg_get_header(connection, "Content-Type");
    request.content_type = type != nullptr ? type : "";
    char buffer[4096];
    int n;
    while ((n = mg_read(connection, buffer, sizeof buffer)) > 0) request.body.append(buffer, static_cast<size_t>(n));
    const int status = self->status_;
    {
      std::lock_guard<std::mutex> lock(self->mutex_);
      self->requests_.push_back(std::move(request));
    }
    const std::string reply = status == 200 ? "{\"status\":\"ok\"}" : "{\"error\":\"refused\"}";
    mg_printf(connection, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", status,
              reply.size(), reply.c_str());
    return status;
  }

  int port_ = 0;
  mg_context* context_ = nullptr;
  std::atomic<int> status_{200};
  std::mutex mutex_;
  std::vector<Request> requests_;
};

// One receiver for the suite: stopping CivetWeb takes about two seconds.
class GraphiteHttpTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { receiver_ = new HttpReceiver(); }
  static void TearDownTestSuite() { delete receiver_; }
  void SetUp() override {
    ASSERT_TRUE(receiver_->running());
    receiver_->Reset();
  }

  std::unique_ptr<GraphiteSender> MakeSender() {
    GraphiteOptions options;
    options.url = "http://user:tok%40en@127.0.0.1:" + std::to_string(receiver_->port()) + "/metrics";
    options.min_backoff = 20ms;
    options.max_backoff = 100ms;
    options.interval_seconds = 10;
    options.log = log_.fn();
    auto sender = GraphiteSender::Create(options);
    EXPECT_TRUE(sender.ok()) << sender.status().message();
    return sender.ok() ? std::move(sender).value() : nullptr;
  }

  static HttpReceiver* receiver_;
  LogRecorder log_;
};

HttpReceiver* GraphiteHttpTest::receiver_ = nullptr;

TEST_F(GraphiteHttpTest, PostsTheJsonArrayWithBasicAuth) {
  auto sender = MakeSender();
  ASSERT_TRUE(sender);
  sender->Push({MakeSample("dev1", "state", "motor.rpm", 1200, 1700000000, {{"site", "paris"}}),
                MakeSample("dev1", "state", "on", 0, 1700000001)});
  ASSERT_TRUE(WaitFor([&] { return sender->counters().sent == 2; }));
  const auto requests = receiver_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].uri, "/metrics");
  EXPECT_EQ(requests[0].authorization, "Basic dXNlcjp0b2tAZW4=");  // user:tok@en
  EXPECT_EQ(requests[0].content_type, "application/json");
  EXPECT_EQ(requests[0].body, R"([{"name":"twins.dev1.state.motor.rpm","interval":10,"value":1200,"time":1700000000,)"
                              R"("tags":["document=state","json_path=motor.rpm","site=paris","twin_id=dev1"]},)"
                              R"({"name":"twins.dev1.state.on","interval":10,"value":0,"time":1700000001,)"
                              R"("tags":["document=state","json_path=on","twin_id=dev1"]}])");
  EXPECT_TRUE(log_.lines().empty()) << Dump(log_.lines());
}

TEST_F(GraphiteHttpTest, RefusedPostIsRetriedUntilAccepted) {
  receiver_->Answer(503);
  auto sender = MakeSender();
  ASSERT_TRUE(sender);
  sender->Push({MakeSample("dev1", "state", "t", 1, 1700000000)});
  ASSERT_TRUE(WaitFor([&] { return receiver_->requests().size() >= 3; }));
  EXPECT_EQ(sender->counters().sent, 0u);
  receiver_->Answer(200);
  ASSERT_TRUE(WaitFor([&] { return sender->counters().sent == 1; }));
  const auto requests = receiver_->requests();
  EXPECT_EQ(requests.front().body, requests.back().body);
  const auto lines = log_.lines();
  ASSERT_EQ(lines.size(), 2u) << Dump(lines);
  EXPECT_EQ(lines[0].rfind("W graphite: http://127.0.0.1:" + std::to_string(receiver_->port()) +
                               "/metrics answered HTTP 503: {\"error\":\"refused\"}; queueing up to",
                           0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[0].find("tok"), std::string::npos) << "the token leaked into the log";
  EXPECT_EQ(lines[1].rfind("I graphite: pushing to http://127.0.0.1:", 0), 0u) << lines[1];
}

TEST_F(GraphiteHttpTest, BadRequestDropsTheBatchWithoutRetrying) {
  receiver_->Answer(400);
  auto sender = MakeSender();
  ASSERT_TRUE(sender);
  sender->Push({MakeSample("dev1", "state", "a", 1, 1700000000)});
  ASSERT_TRUE(WaitFor([&] { return sender->counters().rejected == 1; }));
  receiver_->Answer(200);
  sender->Push({MakeSample("dev1", "state", "b", 2, 1700000000)});
  ASSERT_TRUE(WaitFor([&] { return sender->counters().sent == 1; }));
  const auto requests = receiver_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[1].body.find("\"json_path=b\""), std::string::npos);
  EXPECT_EQ(sender->counters().errors, 0u);
  EXPECT_EQ(log_.Count("W graphite: 1 samples rejected so far, latest: http://127.0.0.1:"), 1u) << Dump(log_.lines());
}

}  // namespace
}  // namespace twins
