// The metrics library: series, histogram buckets, the text format, $SYS topics, and how the
// twins metrics count requests.
#include "metrics/registry.hpp"
#include "metrics/sys_topics.hpp"
#include "metrics/twins_metrics.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace twins::metrics {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(RegistryTest, RendersHelpTypeAndLabelledSeriesOncePerFamily) {
  Registry r;
  r.AddCounter("demo_total", "Demo \\ counter\nsecond line", {{"kind", "a"}}).Add(3);
  r.AddCounter("demo_total", "ignored", {{"kind", "quote\"d"}});
  r.AddGauge("demo_gauge", "A gauge").Set(-2);
  const std::string text = r.RenderPrometheus();
  EXPECT_EQ(text,
            "# HELP demo_total Demo \\\\ counter\\nsecond line\n"
            "# TYPE demo_total counter\n"
            "demo_total{kind=\"a\"} 3\n"
            "demo_total{kind=\"quote\\\"d\"} 0\n"
            "# HELP demo_gauge A gauge\n"
            "# TYPE demo_gauge gauge\n"
            "demo_gauge -2\n");
}

TEST(RegistryTest, HistogramBucketsAreCumulativeWithSumAndCountInSeconds) {
  Registry r;
  Histogram& h = r.AddHistogram("lat_seconds", "Latency", {{"op", "get"}});
  h.ObserveNanos(40'000);          // 40 us: first bucket (0.00005)
  h.ObserveNanos(100'000);         // exactly 0.0001: le is inclusive
  h.ObserveNanos(20'000'000'000);  // 20 s: only +Inf
  const std::string text = r.RenderPrometheus();
  EXPECT_TRUE(Contains(text, "lat_seconds_bucket{op=\"get\",le=\"5e-05\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "lat_seconds_bucket{op=\"get\",le=\"0.0001\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, "lat_seconds_bucket{op=\"get\",le=\"10\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, "lat_seconds_bucket{op=\"get\",le=\"+Inf\"} 3\n")) << text;
  EXPECT_TRUE(Contains(text, "lat_seconds_sum{op=\"get\"} 20.00014\n")) << text;
  EXPECT_TRUE(Contains(text, "lat_seconds_count{op=\"get\"} 3\n")) << text;
}

TEST(RegistryTest, CallbacksAreReadAtRenderTime) {
  Registry r;
  double value = 1;
  r.AddCallback("queue_points", "Queue", Type::kGauge, {}, [&value] { return value; });
  EXPECT_TRUE(Contains(r.RenderPrometheus(), "queue_points 1\n"));
  value = 2.5;
  EXPECT_TRUE(Contains(r.RenderPrometheus(), "queue_points 2.5\n"));
}

TEST(RegistryTest, OneNameWithTwoTypesIsAProgrammingError) {
  Registry r;
  r.AddCounter("x_total", "x");
  EXPECT_THROW(r.AddGauge("x_total", "x"), std::logic_error);
}

TEST(RegistryTest, CountersAddUpAcrossThreads) {
  Registry r;
  Counter& c = r.AddCounter("n_total", "n");
  Histogram& h = r.AddHistogram("d_seconds", "d");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Add();
        h.ObserveNanos(1000);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.snapshot().count, 40000u);
}

TEST(FormatValueTest, WritesIntegersPlainlyAndFractionsShortest) {
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(123456789), "123456789");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1.0 / 3), "0.3333333333333333");
  EXPECT_EQ(FormatValue(-1.5), "-1.5");
}

TEST(SysTopicsTest, NamesDropThePrefixAndTotalAndAppendLabelValues) {
  Registry r;
  r.AddCounter("twins_requests_total", "r", {{"api", "mqtt"}, {"operation", "get"}, {"result", "ok"}}).Add(2);
  r.AddGauge("twins_store_bytes", "b").Set(4096);
  r.AddHistogram("twins_request_duration_seconds", "d", {{"api", "rest"}, {"operation", "put"}})
      .ObserveNanos(500'000'000);
  SysTopics sys;
  const auto first = sys.Changed(r);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"$SYS/broker/twins/requests/mqtt/get/ok", "2"},
      {"$SYS/broker/twins/store_bytes", "4096"},
      {"$SYS/broker/twins/request_duration_seconds/rest/put/count", "1"},
      {"$SYS/broker/twins/request_duration_seconds/rest/put/sum", "0.5"},
  };
  EXPECT_EQ(first, expected);
}

TEST(SysTopicsTest, OnlyChangedValuesArePublishedAgain) {
  Registry r;
  Counter& a = r.AddCounter("twins_a_total", "a");
  r.AddCounter("twins_b_total", "b");
  SysTopics sys;
  EXPECT_EQ(sys.Changed(r).size(), 2u);
  EXPECT_TRUE(sys.Changed(r).empty());
  a.Add();
  const auto changed = sys.Changed(r);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0], (std::pair<std::string, std::string>("$SYS/broker/twins/a", "1")));
}

TEST(TwinsMetricsTest, EveryRequestSeriesStartsAtZeroAndMqttHasNoRestOnlyOperations) {
  TwinsMetrics m("1.2.3");
  const std::string text = m.registry().RenderPrometheus();
  EXPECT_TRUE(Contains(text, "twins_build_info{version=\"1.2.3\"} 1\n"));
  EXPECT_TRUE(Contains(text, "twins_requests_total{api=\"mqtt\",operation=\"patch\",result=\"version_mismatch\"} 0\n"));
  EXPECT_TRUE(
      Contains(text, "twins_requests_total{api=\"rest\",operation=\"delete_all\",result=\"unauthenticated\"} 0\n"));
  EXPECT_FALSE(Contains(text, "api=\"mqtt\",operation=\"list\""));
  EXPECT_FALSE(Contains(text, "api=\"mqtt\",operation=\"get\",result=\"unauthenticated\""));
}

TEST(TwinsMetricsTest, ErrorKindsFeedTheirDedicatedCounters) {
  TwinsMetrics m("1");
  m.Request(Api::kMqtt, Operation::kPut, OutcomeOf(Code::kVersionMismatch), 1000);
  m.Request(Api::kRest, Operation::kPut, OutcomeOfHttp(403), 1000, "twins");
  m.Request(Api::kRest, Operation::kPatch, OutcomeOfHttp(429), 1000);
  m.Request(Api::kRest, Operation::kGet, OutcomeOfHttp(401), 1000);
  m.Request(Api::kMqtt, Operation::kList, Outcome::kOk, 1000);  // not an MQTT operation: other
  const std::string text = m.registry().RenderPrometheus();
  EXPECT_TRUE(Contains(text, "twins_version_conflicts_total 1\n"));
  EXPECT_TRUE(Contains(text, "twins_quota_rejections_total{quota=\"twins\"} 1\n"));
  EXPECT_TRUE(Contains(text, "twins_quota_rejections_total{quota=\"twin_documents\"} 0\n"));
  EXPECT_TRUE(Contains(text, "twins_rate_limited_total{api=\"rest\"} 1\n"));
  EXPECT_TRUE(Contains(text, "twins_rest_auth_failures_total 1\n"));
  EXPECT_TRUE(Contains(text, "twins_requests_total{api=\"mqtt\",operation=\"other\",result=\"ok\"} 1\n"));
  EXPECT_TRUE(Contains(text, "twins_request_duration_seconds_count{api=\"rest\",operation=\"put\"} 1\n"));
}

TEST(TwinsMetricsTest, HttpStatusesMapToResults) {
  EXPECT_EQ(OutcomeOfHttp(200), Outcome::kOk);
  EXPECT_EQ(OutcomeOfHttp(204), Outcome::kOk);
  EXPECT_EQ(OutcomeOfHttp(304), Outcome::kOk);
  EXPECT_EQ(OutcomeOfHttp(400), Outcome::kInvalidArgument);
  EXPECT_EQ(OutcomeOfHttp(405), Outcome::kInvalidArgument);
  EXPECT_EQ(OutcomeOfHttp(413), Outcome::kInvalidArgument);
  EXPECT_EQ(OutcomeOfHttp(404), Outcome::kNotFound);
  EXPECT_EQ(OutcomeOfHttp(412), Outcome::kVersionMismatch);
  EXPECT_EQ(OutcomeOfHttp(507), Outcome::kInsufficientStorage);
  EXPECT_EQ(OutcomeOfHttp(500), Outcome::kInternal);
  EXPECT_EQ(OutcomeOfHttp(503), Outcome::kUnavailable);
  EXPECT_EQ(OutcomeOf(Code::kUnavailable), Outcome::kUnavailable);
}

}  // namespace
}  // namespace twins::metrics
