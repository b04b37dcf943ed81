// REST request paths: split before decoding, then RFC 3986 percent-decoding per segment; query
// parameters and the whole numbers they carry.
#include "rest/path.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace twins {
namespace {

using Segments = std::vector<std::string_view>;

TEST(SplitPathTest, SplitsOnSlashesAfterTheLeadingOne) {
  EXPECT_EQ(SplitPath("/iot/v1/regions/fr-par/twins/dev1"),
            (Segments{"iot", "v1", "regions", "fr-par", "twins", "dev1"}));
  EXPECT_EQ(SplitPath("/a"), (Segments{"a"}));
}

TEST(SplitPathTest, RootAndEmptySegmentsAreKept) {
  EXPECT_EQ(SplitPath("/"), (Segments{""}));
  EXPECT_EQ(SplitPath(""), (Segments{""}));
  EXPECT_EQ(SplitPath("/a//b/"), (Segments{"a", "", "b", ""}));
}

TEST(SplitPathTest, EncodedSlashStaysInsideItsSegment) {
  EXPECT_EQ(SplitPath("/twins/a%2Fb/documents"), (Segments{"twins", "a%2Fb", "documents"}));
}

TEST(PercentDecodeTest, DecodesEscapesInEitherCase) {
  EXPECT_EQ(PercentDecode("plain"), "plain");
  EXPECT_EQ(PercentDecode("a%20b"), "a b");
  EXPECT_EQ(PercentDecode("%2f%2F"), "//");
  EXPECT_EQ(PercentDecode("%41%7a"), "Az");
  EXPECT_EQ(PercentDecode(""), "");
}

TEST(PercentDecodeTest, PlusIsNotASpaceInAPath) { EXPECT_EQ(PercentDecode("a+b"), "a+b"); }

TEST(PercentDecodeTest, DecodedBytesAreNotDecodedTwice) { EXPECT_EQ(PercentDecode("%2541"), "%41"); }

TEST(PercentDecodeTest, NulAndHighBytesComeThroughForTheNameRulesToRefuse) {
  EXPECT_EQ(PercentDecode("a%00b"), std::string("a\0b", 3));
  EXPECT_EQ(PercentDecode("%C3%A9"), "\xC3\xA9");
}

TEST(PercentDecodeTest, TruncatedOrNonHexEscapesAreRefused) {
  for (const char* bad : {"%", "%2", "a%", "a%4", "%G1", "%1G", "%%41", "% 1"}) {
    EXPECT_EQ(PercentDecode(bad), std::nullopt) << bad;
  }
}

TEST(FindQueryParameterTest, FindsTheFirstOfANameDecodedWithPlusAsSpace) {
  const QueryParameter twin = FindQueryParameter("since=3&twin_id=my+dev%2B1&twin_id=other", "twin_id");
  EXPECT_TRUE(twin.present);
  EXPECT_TRUE(twin.valid);
  EXPECT_EQ(twin.value, "my dev+1");
  EXPECT_EQ(FindQueryParameter("since=3", "since").value, "3");
  const QueryParameter empty = FindQueryParameter("a=&b", "b");
  EXPECT_TRUE(empty.present);
  EXPECT_EQ(empty.value, "");
}

TEST(FindQueryParameterTest, AbsentOrBadlyEncodedIsSaid) {
  EXPECT_FALSE(FindQueryParameter("", "since").present);
  EXPECT_FALSE(FindQueryParameter("sinc=1&since_x=2", "since").present);
  const QueryParameter bad = FindQueryParameter("since=%zz", "since");
  EXPECT_TRUE(bad.present);
  EXPECT_FALSE(bad.valid);
}

TEST(ParseWholeNumberTest, DigitsUpToTheMaximum) {
  EXPECT_EQ(ParseWholeNumber("0", 10), 0u);
  EXPECT_EQ(ParseWholeNumber("007", 10), 7u);
  EXPECT_EQ(ParseWholeNumber("10", 10), 10u);
  EXPECT_EQ(ParseWholeNumber("9223372036854775808", uint64_t{1} << 63), uint64_t{1} << 63);
  EXPECT_EQ(ParseWholeNumber("18446744073709551615", UINT64_MAX), UINT64_MAX);
}

TEST(ParseWholeNumberTest, AnythingElseIsRefused) {
  for (const char* bad : {"", "11", "-1", "+1", " 1", "1 ", "1.0", "1e1", "0x1", "99999999999999999999999"}) {
    EXPECT_EQ(ParseWholeNumber(bad, 10), std::nullopt) << bad;
  }
  EXPECT_EQ(ParseWholeNumber("9223372036854775809", uint64_t{1} << 63), std::nullopt);
  EXPECT_EQ(ParseWholeNumber("18446744073709551616", UINT64_MAX), std::nullopt);
}

}  // namespace
}  // namespace twins
