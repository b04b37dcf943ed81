// Entity tags of the REST API: ETag, If-Match, If-None-Match.
#include "rest/conditional.hpp"

#include <gtest/gtest.h>

#include "engine/request_body.hpp"

namespace twins {
namespace {

TEST(ETagTest, IsTheVersionInQuotes) {
  EXPECT_EQ(ETag(1), "\"1\"");
  EXPECT_EQ(ETag(123456789), "\"123456789\"");
}

TEST(ParseIfMatchTest, StarMatchesAnyVersion) {
  auto match = ParseIfMatch("*");
  ASSERT_TRUE(match.ok()) << match.status().message();
  EXPECT_TRUE(match->any);
  EXPECT_TRUE(match->Matches(1));
  EXPECT_TRUE(match->Matches(99));
  EXPECT_EQ(match->Describe(), "*");
}

TEST(ParseIfMatchTest, ListOfStrongTagsMatchesExactlyThoseVersions) {
  auto match = ParseIfMatch(" \"3\" ,\t\"5\" ");
  ASSERT_TRUE(match.ok()) << match.status().message();
  EXPECT_FALSE(match->any);
  EXPECT_EQ(match->versions, (std::vector<uint64_t>{3, 5}));
  EXPECT_TRUE(match->Matches(3));
  EXPECT_TRUE(match->Matches(5));
  EXPECT_FALSE(match->Matches(4));
  EXPECT_EQ(match->Describe(), "3 or 5");
}

TEST(ParseIfMatchTest, EmptyListItemsAreSkipped) {
  auto match = ParseIfMatch("\"7\",,");
  ASSERT_TRUE(match.ok()) << match.status().message();
  EXPECT_EQ(match->versions, (std::vector<uint64_t>{7}));
}

TEST(ParseIfMatchTest, TheLargestVersionIsAcceptedAndOneMoreIsNot) {
  auto largest = ParseIfMatch(ETag(kMaxVersion));
  ASSERT_TRUE(largest.ok()) << largest.status().message();
  EXPECT_TRUE(largest->Matches(kMaxVersion));
  EXPECT_FALSE(ParseIfMatch(ETag(kMaxVersion + 1)).ok());
}

TEST(ParseIfMatchTest, MalformedValuesAreInvalidArgumentsNamingTheHeader) {
  for (const char* bad : {"", " ", ",", "3", "\"3", "3\"", "\"3\" \"4\"", "\"a\"b\"", "W/", "**"}) {
    auto match = ParseIfMatch(bad);
    ASSERT_FALSE(match.ok()) << "accepted: [" << bad << "]";
    EXPECT_EQ(match.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_EQ(match.status().field(), "If-Match") << bad;
  }
}

TEST(ParseIfMatchTest, TagsThatAreNotOurVersionsAreRefused) {
  // Weak tags (If-Match compares strongly), version 0, leading zeros, non-digits, too long.
  for (const char* bad : {"W/\"3\"", "\"0\"", "\"03\"", "\"3a\"", "\"-3\"", "\"\"", "\"12345678901234567\""}) {
    auto match = ParseIfMatch(bad);
    ASSERT_FALSE(match.ok()) << "accepted: " << bad;
    EXPECT_EQ(match.status().field(), "If-Match") << bad;
  }
}

TEST(IfNoneMatchTest, HitsOnTheVersionWeakOrStrongAndOnStar) {
  EXPECT_TRUE(IfNoneMatchHits("\"4\"", 4));
  EXPECT_TRUE(IfNoneMatchHits("W/\"4\"", 4));
  EXPECT_TRUE(IfNoneMatchHits("\"1\", \"4\"", 4));
  EXPECT_TRUE(IfNoneMatchHits("*", 4));
}

TEST(IfNoneMatchTest, MissesOnOtherVersionsAndOnMalformedValues) {
  EXPECT_FALSE(IfNoneMatchHits("\"5\"", 4));
  EXPECT_FALSE(IfNoneMatchHits("\"04\"", 4));
  EXPECT_FALSE(IfNoneMatchHits("4", 4));
  EXPECT_FALSE(IfNoneMatchHits("", 4));
  EXPECT_FALSE(IfNoneMatchHits("\"4", 4));
}

}  // namespace
}  // namespace twins
