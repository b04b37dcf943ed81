#include "engine/json.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twins {
namespace {

Json Parse(const char* text) {
  Json json(cJSON_Parse(text));
  EXPECT_TRUE(json) << text;
  return json;
}

TEST(JsonTest, PrintsCompactly) {
  EXPECT_EQ(PrintJson(Parse(R"({"a": [1, 2], "b": {"c": "d", "e": [true, false, null]}})").get()),
            R"({"a":[1,2],"b":{"c":"d","e":[true,false,null]}})");
}

TEST(JsonTest, NumbersPrintAsTheShortestExactText) {
  auto json = Parse(R"([0, -0, 20, 21.5, 0.1, 1e21, -3.25e-8, 9007199254740993, 1.7976931348623157e308])");
  EXPECT_EQ(PrintJson(json.get()), "[0,-0,20,21.5,0.1,1e+21,-3.25e-08,9007199254740992,1.7976931348623157e+308]");
}

TEST(JsonTest, StringsAndKeysAreEscaped) {
  auto json = Parse(R"({"k\"ey":"line\nbreak \u0001 \u00e9 \b\f/"})");
  EXPECT_EQ(PrintJson(json.get()), "{\"k\\\"ey\":\"line\\nbreak \\u0001 \xc3\xa9 \\u0008\\u000c/\"}");
}

TEST(JsonTest, QuoteEscapesControlCharactersAndQuotes) {
  EXPECT_EQ(QuoteJson("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
}

TEST(JsonTest, Utf8IsCheckedStrictly) {
  EXPECT_TRUE(IsValidUtf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xff"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // cut short
}

}  // namespace
}  // namespace twins
