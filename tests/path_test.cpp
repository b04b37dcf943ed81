// REST request paths: split before decoding, then RFC 3986 percent-decoding per segment.
#include "rest/path.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace twins
