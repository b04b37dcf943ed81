#include "engine/merge.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/json.hpp"
#include "tests/support/merge_oracle.hpp"

namespace twins {
namespace {

using test::ReferenceMerge;

struct MergeCase {
  const char* target;
  const char* patch;
  const char* expected;
};

class MergeTest : public testing::TestWithParam<MergeCase> {};

// The patch in the form the engine passes: compact, escaped as the engine writes.
std::string Merge(std::string_view target, const char* patch_text) {
  Json patch(cJSON_Parse(patch_text));
  EXPECT_TRUE(patch) << patch_text;
  std::string out;
  Status s = MergePatch(target, PrintJson(patch.get()), &out);
  return s.ok() ? out : "error: " + s.message();
}

TEST_P(MergeTest, MatchesExpectedDocument) {
  const MergeCase& c = GetParam();
  EXPECT_EQ(Merge(c.target, c.patch), c.expected);
}

// Stored text is compact, but the reader does not depend on it.
TEST_P(MergeTest, IgnoresWhitespaceInTheTarget) {
  const MergeCase& c = GetParam();
  std::string spaced;
  for (char ch : std::string(c.target)) {
    spaced += ch;
    if (ch == ',' || ch == ':' || ch == '{' || ch == '[') spaced += " \n\t";
  }
  EXPECT_EQ(Merge(" " + spaced + "\r\n", c.patch), c.expected);
}

// RFC 7396 appendix A, every example whose target and patch are objects (twin data always
// is), the non-object ones nested one level down, plus the twin rules the seed spells out.
INSTANTIATE_TEST_SUITE_P(
    Rfc7396, MergeTest,
    testing::Values(MergeCase{R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
                    MergeCase{R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
                    MergeCase{R"({"a":"b"})", R"({"a":null})", R"({})"},
                    MergeCase{R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
                    MergeCase{R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
                    MergeCase{R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
                    MergeCase{R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
                    MergeCase{R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
                    MergeCase{R"({"x":["a","b"]})", R"({"x":["c","d"]})", R"({"x":["c","d"]})"},
                    MergeCase{R"({"x":{"a":"b"}})", R"({"x":["c"]})", R"({"x":["c"]})"},
                    MergeCase{R"({"x":{"a":"foo"}})", R"({"x":null})", R"({})"},
                    MergeCase{R"({"x":{"a":"foo"}})", R"({"x":"bar"})", R"({"x":"bar"})"},
                    MergeCase{R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
                    MergeCase{R"({"x":[1,2]})", R"({"x":{"a":"b","c":null}})", R"({"x":{"a":"b"}})"},
                    MergeCase{R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"}));

INSTANTIATE_TEST_SUITE_P(TwinRules, MergeTest,
                         testing::Values(MergeCase{R"({"a":1,"b":2})", R"({})", R"({"a":1,"b":2})"},
                                         MergeCase{R"({"a":1,"b":2,"c":3})", R"({"b":20})", R"({"a":1,"b":20,"c":3})"},
                                         MergeCase{R"({"a":true})", R"({"a":false})", R"({"a":false})"},
                                         MergeCase{R"({"a":{"b":{"c":1,"d":2}}})", R"({"a":{"b":{"c":null}}})",
                                                   R"({"a":{"b":{"d":2}}})"},
                                         MergeCase{R"({"a":[1,2,3]})", R"({"a":[]})", R"({"a":[]})"},
                                         MergeCase{R"({"a":1})", R"({"missing":null})", R"({"a":1})"}));

TEST(MergeText, KeysWithEscapesMatchTheirPatchKeys) {
  EXPECT_EQ(Merge(R"({"a\"b":1,"caf\u00e9":2,"t\tab":3})", R"({"a\"b":10,"café":null,"t\u0009ab":30})"),
            R"({"a\"b":10,"t\tab":30})");
}

TEST(MergeText, CopiesUntouchedValuesVerbatim) {
  EXPECT_EQ(Merge(R"({"s":"x}],{\"y","n":[{"a":[1,{"b":"]"}]}],"k":1})", R"({"k":2})"),
            R"({"s":"x}],{\"y","n":[{"a":[1,{"b":"]"}]}],"k":2})");
}

// The skip over untouched values reads 16 bytes at a time: put quotes, escapes and brackets
// inside strings at every offset from a block's start, and escapes across a block's end.
TEST(MergeText, SkipsNestedValuesWhateverTheirStringsHoldAndWhereverTheyFall) {
  for (const char* tricky : {R"(\"]})", R"(\\)", R"(\\\"{[)", R"(x\u005d\"}])", R"(caf\u00e9 {)", "]]}}"}) {
    for (int pad = 0; pad < 40; ++pad) {
      const std::string value = R"({"s":")" + std::string(pad, 'p') + tricky + R"(","a":[1,{"b":")" + tricky +
                                R"("},[]],"o":{"x":{}}})";
      const std::string target = R"({"v":)" + value + R"(,"k":1})";
      EXPECT_EQ(Merge(target, R"({"k":2})"), R"({"v":)" + value + R"(,"k":2})") << target;
      EXPECT_EQ(Merge(target, R"({"v":{"s":null}})"),
                R"({"v":{"a":[1,{"b":")" + std::string(tricky) + R"("},[]],"o":{"x":{}}},"k":1})")
          << target;
    }
  }
}

TEST(MergeText, RefusesEveryTruncationOfATarget) {
  const std::string target = R"({"a":{"s":"0123456789abcdef\"}]x","n":[1,[2,{"c":"\\"}]]},"b":"yyyyyyyyyyyyyyyyyyyy"})";
  ASSERT_EQ(Merge(target, R"({"z":1})"), target.substr(0, target.size() - 1) + R"(,"z":1})");
  // A patch of the first member: the rest is copied without being read member by member.
  ASSERT_EQ(Merge(target, R"({"a":{"n":null}})"), R"({"a":{"s":"0123456789abcdef\"}]x"},"b":"yyyyyyyyyyyyyyyyyyyy"})");
  for (size_t length = 0; length < target.size(); ++length) {
    for (const char* patch : {R"({"z":1})", R"({"a":{"n":null}})"}) {
      EXPECT_EQ(Merge(target.substr(0, length), patch), "error: stored document is not a JSON object")
          << length << " " << patch;
    }
  }
}

// After the last member a patch changes, the rest of the target is copied as it is: bytes of
// UTF-8 and escapes in its strings included, whitespace outside them normalized.
TEST(MergeText, CopiesTheRestAfterTheLastChangeExactly) {
  const std::string rest =
      "\"s\":\"caf\xc3\xa9 \xe2\x82\xac \\\" \\u00e9 ] } long enough for blocks\",\"n\":[{}],\"t\":true}";
  EXPECT_EQ(Merge("{\"a\":1," + rest, R"({"a":2})"), "{\"a\":2," + rest);
  EXPECT_EQ(Merge("{\"a\":1, \"b\" : [ 1 , 2 ] , " + rest, R"({"a":2})"), "{\"a\":2,\"b\":[ 1 , 2 ]," + rest);
  EXPECT_EQ(Merge("{\"a\":1," + rest, R"({"a":null})"), "{" + rest);
}

TEST(MergeText, RefusesATargetThatIsNotAnObject) {
  for (const char* target : {"", "[]", "1", "\"a\"", "{", "{\"a\"", "{\"a\":", "{\"a\":1", "{\"a\":1,}", "{\"a\":[1}",
                             "{\"a\":\"x}", "{a:1}", "{\"a\":1}x", "{\"a\" 1}", "{\"a\":{\"b\":1}"}) {
    EXPECT_EQ(Merge(target, R"({"a":2})"), "error: stored document is not a JSON object") << target;
  }
}

TEST(MergeText, RefusesAPatchThatIsNotAnObject) {
  EXPECT_EQ(Merge("{}", "[1]"), "error: a patch must be a JSON object");
  for (const char* patch : {"", "{", "{\"a\":", "{\"a\":1", "{\"a\":1}x", "1"}) {
    std::string out;
    EXPECT_EQ(MergePatch(R"({"a":0})", patch, &out).message(), "a patch must be a JSON object") << patch;
  }
}

class RandomJson {
 public:
  explicit RandomJson(unsigned seed) : random_(seed) {}

  // An object of up to 4 members from a small key set, so that patches hit existing keys.
  cJSON* Object(int depth, bool nulls) {
    static const char* const kKeys[] = {"a", "b", "c", "d\"q", "caf\xc3\xa9", "t\tab", "sensor3"};
    cJSON* object = cJSON_CreateObject();
    int members = Pick(5);
    for (int i = 0; i < members; ++i) {
      const char* key = kKeys[Pick(7)];
      if (cJSON_GetObjectItemCaseSensitive(object, key) != nullptr) continue;
      cJSON_AddItemToObject(object, key, Value(depth, nulls));
    }
    return object;
  }

 private:
  cJSON* Value(int depth, bool nulls) {
    switch (Pick(depth > 0 ? 9 : 6)) {
      case 0:
        return cJSON_CreateNumber(Pick(1000) / 8.0 - 20);
      case 1:
        return cJSON_CreateString(Pick(2) ? "plain" : "q\"uo}te\\ ]");
      case 2:
        return cJSON_CreateBool(Pick(2));
      case 3:
        return nulls ? cJSON_CreateNull() : cJSON_CreateNumber(7);
      case 4:
        return cJSON_CreateString("");
      case 5:
        return cJSON_CreateNumber(1e21);
      case 6: {
        cJSON* array = cJSON_CreateArray();
        for (int i = Pick(3); i > 0; --i)
          cJSON_AddItemToArray(array, depth > 1 ? Object(depth - 2, false) : Value(0, false));
        return array;
      }
      default:
        return Object(depth - 1, nulls);
    }
  }
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }

  std::mt19937 random_;
};

// A patch of more members than the merge keeps on the stack, at the top and one level down.
TEST(MergeText, AgreesWithTheRfcAlgorithmOnPatchesOfManyMembers) {
  std::string target = "{", patch = "{";
  for (int i = 0; i < 20; ++i) target += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  target += ",\"o\":{\"a\":1}}";
  for (int i = 0; i < 30; i += 2) {
    patch += "\"k" + std::to_string(i) +
             "\":" + (i % 4 == 0 ? std::string("null") : "{\"x\":" + std::to_string(i) + "}") + ",";
  }
  patch += "\"o\":{";
  for (int i = 0; i < 12; ++i) patch += (i ? ",\"p" : "\"p") + std::to_string(i) + "\":" + std::to_string(i);
  patch += ",\"a\":null}}";
  Json target_tree(cJSON_Parse(target.c_str()));
  Json patch_tree(cJSON_Parse(patch.c_str()));
  ASSERT_TRUE(target_tree && patch_tree);
  EXPECT_EQ(Merge(target, patch.c_str()), PrintJson(ReferenceMerge(target_tree.get(), patch_tree.get()).get()));
}

// Thousands of members on both sides, target keys escaped in other spellings than the
// patch's (as stored text written by another program may be), nested objects merged, nulls.
TEST(MergeText, AgreesWithTheRfcAlgorithmOnPatchesOfThousandsOfMembers) {
  std::string target = "{", patch = "{";
  for (int i = 0; i < 6000; ++i) {
    const std::string n = std::to_string(i);
    // "\u006b" is 'k'; "\n" stays escaped in every spelling.
    target += (i % 3 == 0   ? "\"\\u006b"
               : i % 3 == 1 ? "\"\\n"
                            : "\"k") +
              n + "\":" + (i % 5 == 0 ? "{\"x\":" + n + ",\"y\":1}" : n) + ",";
  }
  target.back() = '}';
  for (int i = 0; i < 9000; i += 2) {  // every other key of the target, then 3000 new ones
    const std::string n = std::to_string(i);
    const std::string key = (i % 3 == 1 ? "\"\\n" : "\"k") + n + "\":";
    patch += key + (i % 4 == 0 ? "null" : i % 5 == 0 ? "{\"x\":null,\"z\":" + n + "}" : "[" + n + "]") + ",";
  }
  patch.back() = '}';
  Json target_tree(cJSON_Parse(target.c_str()));
  Json patch_tree(cJSON_Parse(patch.c_str()));
  ASSERT_TRUE(target_tree && patch_tree);
  const std::string expected = PrintJson(ReferenceMerge(target_tree.get(), patch_tree.get()).get());
  // Kept members keep the target's spelling.
  Json merged(cJSON_Parse(Merge(target, patch.c_str()).c_str()));
  ASSERT_TRUE(merged);
  EXPECT_TRUE(PrintJson(merged.get()) == expected);
  EXPECT_TRUE(Merge(PrintJson(target_tree.get()), patch.c_str()) == expected);  // the stored spelling
}

TEST(MergeText, StopsAtTheSizeLimitAndNamesIt) {
  const std::string target = R"({"a":"0123456789","b":1})";
  std::string out;
  ASSERT_TRUE(MergePatch(target, R"({"c":2})", &out, 30).ok());
  EXPECT_EQ(out, R"({"a":"0123456789","b":1,"c":2})");  // exactly 30 bytes
  for (const char* patch : {R"({"c":22})", R"({"a":"01234567890123456"})", R"({"b":{"x":1,"y":2}})"}) {
    out = "prefix";  // the limit counts what the merge appends
    Status s = MergePatch(target, patch, &out, 30);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << patch;
    EXPECT_EQ(s.field(), "data");
    EXPECT_EQ(s.message(), "document would be larger than the limit of 30 bytes") << patch;
  }
  // Thousands of new keys: refused once the output passes the limit, not after the whole merge.
  std::string many = "{";
  for (int i = 0; i < 20000; ++i) many += "\"n" + std::to_string(i) + "\":0,";
  many.back() = '}';
  out.clear();
  EXPECT_EQ(MergePatch(target, many, &out, 1000).message(), "document would be larger than the limit of 1000 bytes");
  EXPECT_LT(out.size(), 1100u);
}

TEST(MergeText, AgreesWithTheRfcAlgorithmOnRandomDocuments) {
  RandomJson random(7396);
  for (int i = 0; i < 5000; ++i) {
    Json target(random.Object(4, false));
    Json patch(random.Object(4, true));
    const std::string target_text = PrintJson(target.get());
    const std::string expected = PrintJson(ReferenceMerge(target.get(), patch.get()).get());
    std::string out;
    ASSERT_TRUE(MergePatch(target_text, PrintJson(patch.get()), &out).ok());
    ASSERT_EQ(out, expected) << "target " << target_text << " patch " << PrintJson(patch.get());
  }
}

}  // namespace
}  // namespace twins
