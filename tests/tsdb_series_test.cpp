// Graphite naming, escaping, wire formats and graphite_url parsing (no network).
#include "tsdb/series.hpp"

#include <gtest/gtest.h>

#include "tests/support/samples.hpp"
#include "tsdb/target.hpp"

namespace twins {
namespace {

using test::MakeSample;
constexpr int64_t kTime = 1700000000;

std::string Line(const Sample& sample) {
  auto encoded = Encode(sample);
  return encoded.ok() ? PlaintextLine(encoded.value()) : "<" + encoded.status().message() + ">";
}

TEST(TsdbSeriesTest, NameSegmentsKeepSafeCharactersAndEscapeTheRest) {
  EXPECT_EQ(EscapeNameSegment("motor_rpm-2"), "motor_rpm-2");
  EXPECT_EQ(EscapeNameSegment("a.b c;d~e*f{g}%"), "a%2Eb%20c%3Bd%7Ee%2Af%7Bg%7D%25");
  EXPECT_EQ(EscapeNameSegment("é"), "%C3%A9");
  EXPECT_EQ(EscapeNameSegment(std::string("\n\t\x7f", 3)), "%0A%09%7F");
  EXPECT_EQ(EscapeNameSegment(""), "_");
}

TEST(TsdbSeriesTest, TagValuesEscapeOnlyWhatGraphiteForbids) {
  EXPECT_EQ(EscapeTagValue("paris.north=1!^(x)"), "paris.north=1!^(x)");
  EXPECT_EQ(EscapeTagValue("~a~b"), "%7Ea~b");
  EXPECT_EQ(EscapeTagValue("a;b c%d"), "a%3Bb%20c%25d");
  EXPECT_EQ(EscapeTagValue("é\x01"), "%C3%A9%01");
}

TEST(TsdbSeriesTest, TagNamesAlsoEscapeBangCaretAndEquals) {
  EXPECT_EQ(EscapeTagName("room.name"), "room.name");
  EXPECT_EQ(EscapeTagName("a!b^c=d;e f"), "a%21b%5Ec%3Dd%3Be%20f");
}

TEST(TsdbSeriesTest, LineCarriesNameSortedTagsValueAndTime) {
  EXPECT_EQ(Line(MakeSample("dev1", "current", "motor.rpm", 1200, kTime, {{"site", "paris"}, {"b", "x"}})),
            "twins.dev1.current.motor.rpm;b=x;document=current;json_path=motor.rpm;site=paris;twin_id=dev1"
            " 1200 1700000000\n");
}

TEST(TsdbSeriesTest, TwinAndDocumentAreEscapedInTheNameNotInTheirTags) {
  EXPECT_EQ(Line(MakeSample("dev 1.a", "cur.state", "t", 21.5, kTime)),
            "twins.dev%201%2Ea.cur%2Estate.t;document=cur.state;json_path=t;twin_id=dev%201.a 21.5 1700000000\n");
}

TEST(TsdbSeriesTest, ReservedTagsWinOverUserTags) {
  EXPECT_EQ(Line(MakeSample("dev1", "d", "t", 1, kTime,
                            {{"twin_id", "x"}, {"json_path", "y"}, {"document", "z"}, {"name", "n"}})),
            "twins.dev1.d.t;document=d;json_path=t;twin_id=dev1 1 1700000000\n");
}

TEST(TsdbSeriesTest, UserTagsAreEscapedAndEmptyValuesDropped) {
  EXPECT_EQ(Line(MakeSample("dev1", "d", "t", 1, kTime, {{"a=b", "~x;y"}, {"empty", ""}})),
            "twins.dev1.d.t;a%3Db=%7Ex%3By;document=d;json_path=t;twin_id=dev1 1 1700000000\n");
}

TEST(TsdbSeriesTest, OverlongSeriesIsRejected) {
  auto encoded = Encode(MakeSample("dev1", "d", std::string(kMaxSeriesBytes, 'k'), 1, kTime));
  ASSERT_FALSE(encoded.ok());
  EXPECT_EQ(encoded.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Encode(MakeSample("dev1", "d", std::string(kMaxSeriesBytes / 4, 'k'), 1, kTime)).ok());
}

TEST(TsdbSeriesTest, ValuesUseTheShortestExactForm) {
  EXPECT_EQ(FormatValue(21.5), "21.5");
  EXPECT_EQ(FormatValue(1200), "1200");
  EXPECT_EQ(FormatValue(-0.1), "-0.1");
  EXPECT_EQ(FormatValue(0.30000000000000004), "0.30000000000000004");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
}

TEST(TsdbSeriesTest, JsonArrayHasTheGrafanaCloudShape) {
  std::vector<EncodedPoint> points;
  points.push_back(Encode(MakeSample("dev1", "d", "a", 1.5, kTime, {{"site", "p\"q"}})).value());
  points.push_back(Encode(MakeSample("dev1", "d", "b", 0, kTime)).value());
  EXPECT_EQ(GraphiteJson(points, 10), R"([{"name":"twins.dev1.d.a","interval":10,"value":1.5,"time":1700000000,)"
                                      R"("tags":["document=d","json_path=a","site=p\"q","twin_id=dev1"]},)"
                                      R"({"name":"twins.dev1.d.b","interval":10,"value":0,"time":1700000000,)"
                                      R"("tags":["document=d","json_path=b","twin_id=dev1"]}])");
  EXPECT_EQ(GraphiteJson({}, 10), "[]");
}

TEST(TsdbSeriesTest, TcpUrlGivesHostAndPort) {
  auto target = ParseGraphiteUrl("tcp://graphite.example:2003");
  ASSERT_TRUE(target.ok()) << target.status().message();
  EXPECT_EQ(target->kind, GraphiteTarget::Kind::kCarbonTcp);
  EXPECT_EQ(target->host, "graphite.example");
  EXPECT_EQ(target->port, 2003);
  EXPECT_EQ(target->display, "tcp://graphite.example:2003");

  auto v6 = ParseGraphiteUrl("tcp://[::1]:2003/");
  ASSERT_TRUE(v6.ok()) << v6.status().message();
  EXPECT_EQ(v6->host, "::1");
}

TEST(TsdbSeriesTest, HttpUrlGivesDecodedCredentialsAndBareUrl) {
  auto target = ParseGraphiteUrl("https://12345:glc_ab%2Bc%40d@graphite-prod.grafana.net/graphite/metrics");
  ASSERT_TRUE(target.ok()) << target.status().message();
  EXPECT_EQ(target->kind, GraphiteTarget::Kind::kHttp);
  EXPECT_EQ(target->user, "12345");
  EXPECT_EQ(target->password, "glc_ab+c@d");
  EXPECT_EQ(target->url, "https://graphite-prod.grafana.net/graphite/metrics");
  EXPECT_EQ(target->display, target->url);
}

TEST(TsdbSeriesTest, InvalidUrlsAreRefusedWithAReason) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "empty"},
      {"graphite:2003", "scheme"},
      {"udp://host:2003", "unknown scheme \"udp\""},
      {"tcp://host", "needs a port"},
      {"tcp://host:0", "port"},
      {"tcp://host:70000", "URL"},
      {"tcp://u:p@host:2003", "no credentials"},
      {"tcp://host:2003/path", "no path"},
      {"tcp://host:2003?x=1", "no query"},
      {"tcp://host:2003#frag", "fragment"},
      {"tcp://:2003", "host"},
      {"https://host/metrics", "needs credentials"},
      {"https://user@host/metrics", "needs credentials"},
      {"https://user:@host/metrics", "needs credentials"},
      {"https://user:tok@host/me trics", "space"},
      {"http://user:tok\n@host/", "control"},
  };
  for (const auto& [url, reason] : cases) {
    auto target = ParseGraphiteUrl(url);
    ASSERT_FALSE(target.ok()) << url;
    EXPECT_EQ(target.status().code(), Code::kInvalidArgument) << url;
    EXPECT_EQ(target.status().field(), "graphite_url") << url;
    EXPECT_NE(target.status().message().find(reason), std::string::npos) << url << ": " << target.status().message();
  }
}

}  // namespace
}  // namespace twins
