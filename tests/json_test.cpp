#include "json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twins {
namespace {

TEST(JsonTest, ParsesOneObject) {
  auto json = ParseJson(R"({"a": [1, 2], "b": {"c": "d"}})", "data");
  ASSERT_TRUE(json.ok()) << json.status().message();
  EXPECT_EQ(PrintJson(json->get()), R"({"a":[1,2],"b":{"c":"d"}})");
}

TEST(JsonTest, EmptyTextIsRejected) {
  auto json = ParseJson("", "data");
  ASSERT_FALSE(json.ok());
  EXPECT_EQ(json.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(json.status().field(), "data");
}

TEST(JsonTest, TrailingBytesAreRejected) {
  EXPECT_FALSE(ParseJson(R"({"a":1} x)", "data").ok());
  EXPECT_FALSE(ParseJson(R"({"a":1}{})", "data").ok());
  EXPECT_TRUE(ParseJson("{\"a\":1} \n", "data").ok());
}

TEST(JsonTest, EmbeddedNulIsRejected) {
  EXPECT_FALSE(ParseJson(std::string("{}\0garbage", 10), "data").ok());
}

TEST(JsonTest, InvalidUtf8IsRejected) {
  EXPECT_FALSE(ParseJson("{\"a\":\"\xff\"}", "data").ok());
  EXPECT_FALSE(ParseJson("{\"a\":\"\xc0\xaf\"}", "data").ok());      // overlong '/'
  EXPECT_FALSE(ParseJson("{\"a\":\"\xed\xa0\x80\"}", "data").ok());  // surrogate
  EXPECT_TRUE(ParseJson("{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "data").ok());
}

TEST(JsonTest, InvalidJsonNamesTheOffset) {
  auto json = ParseJson(R"({"a": tru})", "data");
  ASSERT_FALSE(json.ok());
  EXPECT_NE(json.status().message().find("invalid JSON near byte"), std::string::npos);
}

TEST(JsonTest, DepthCountsNestedContainers) {
  EXPECT_EQ(JsonDepth(ParseJson("1", "data")->get()), 0);
  EXPECT_EQ(JsonDepth(ParseJson("{}", "data")->get()), 1);
  EXPECT_EQ(JsonDepth(ParseJson(R"({"a":{"b":[[1]]},"c":2})", "data")->get()), 4);
}

TEST(JsonTest, NumbersPrintAsTheShortestExactText) {
  auto json = ParseJson(R"([0, -0, 20, 21.5, 0.1, 1e21, -3.25e-8, 9007199254740993, 1.7976931348623157e308])", "data");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(PrintJson(json->get()), "[0,-0,20,21.5,0.1,1e+21,-3.25e-08,9007199254740992,1.7976931348623157e+308]");
}

TEST(JsonTest, NumbersBeyondADoubleAreRejected) {
  auto json = ParseJson(R"({"a":{"b":1e999}})", "data");
  ASSERT_TRUE(json.ok());
  Status s = CheckDataTree(json->get(), true);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.a.b: number out of range");
}

TEST(JsonTest, StringsAndKeysAreEscaped) {
  auto json = ParseJson(R"({"k\"ey":"line\nbreak \u0001 \u00e9"})", "data");
  ASSERT_TRUE(json.ok());
  EXPECT_EQ(PrintJson(json->get()), "{\"k\\\"ey\":\"line\\nbreak \\u0001 \xc3\xa9\"}");
}

TEST(JsonTest, QuoteEscapesControlCharactersAndQuotes) {
  EXPECT_EQ(QuoteJson("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
}

Status Check(const char* text, bool reserved) {
  auto json = ParseJson(text, "data");
  EXPECT_TRUE(json.ok());
  return CheckDataTree(json->get(), reserved);
}

TEST(JsonTest, TreeWithoutNullsInArraysPasses) {
  EXPECT_TRUE(Check(R"({"a":null,"b":[1,{"c":2}],"d":{"e":null}})", true).ok());
}

TEST(JsonTest, NullInArrayAtAnyDepthIsRejected) {
  Status top = Check(R"({"a":[1,null]})", true);
  ASSERT_FALSE(top.ok());
  EXPECT_EQ(top.message(), "data.a[1]: arrays cannot contain null");
  Status nested = Check(R"({"a":{"b":[[1,[null]]]}})", true);
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.message(), "data.a.b[0][1][0]: arrays cannot contain null");
  Status in_object = Check(R"({"a":[{"b":null}]})", true);
  ASSERT_FALSE(in_object.ok());
  EXPECT_EQ(in_object.message(), "data.a[0].b: arrays cannot contain null");
}

TEST(JsonTest, ReservedKeysAreRejectedOnlyWhenAsked) {
  Status s = Check(R"({"a":{"_b":1}})", true);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.a._b: keys starting with '_' are reserved");
  EXPECT_TRUE(Check(R"({"a":{"_b":1}})", false).ok());
}

TEST(JsonTest, DuplicateKeysAreRejected) {
  Status s = Check(R"({"a":{"b":1,"b":2}})", false);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "data.a.b: duplicate key");
}

}  // namespace
}  // namespace twins
