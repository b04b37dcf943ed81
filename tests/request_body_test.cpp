#include "engine/request_body.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "engine/json.hpp"

namespace twins {
namespace {

// The stored form of a body's data, or "error: <message>".
std::string Data(std::string_view body) {
  auto parsed = ParseRequestBody(body, true, "data");
  if (!parsed.ok()) return "error: " + parsed.status().message();
  if (!parsed->data_error.ok()) return "rule: " + parsed->data_error.message();
  return parsed->data ? *parsed->data : "<none>";
}

TEST(RequestBodyTest, WritesDataInTheStoredForm) {
  EXPECT_EQ(Data(" {\n\t\"data\" : { \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } } \r\n"),
            R"({"a":[1,2],"b":{},"c":[]})");
  EXPECT_EQ(Data(R"({"data":{"n":[0,-0,20,21.50,0.1,1e21,1E2,-3.25e-8,0.1e1,9007199254740993,1e-400]}})"),
            R"({"n":[0,-0,20,21.5,0.1,1e+21,100,-3.25e-08,1,9007199254740992,0]})");
  // Integers are copied as they are only where that is also the shortest form.
  EXPECT_EQ(Data(R"({"data":{"i":[-7,123456789012345,100000000000000,1234567890123456,10,-120,99999999999999999]}})"),
            R"({"i":[-7,123456789012345,1e+14,1234567890123456,10,-120,1e+17]})");
  EXPECT_EQ(Data(R"({"data":{"k\"ey":"line\nbreak \u0001 \u00E9 \b\f\/ \ud83d\ude00","t":true,"f":false,"z":null}})"),
            "{\"k\\\"ey\":\"line\\nbreak \\u0001 \xc3\xa9 \\u0008\\u000c/ \xf0\x9f\x98\x80\",\"t\":true,\"f\":false,"
            "\"z\":null}");
}

TEST(RequestBodyTest, ReadsVersionAndOnlyTheFirstOfEachMember) {
  auto body = ParseRequestBody(R"({"other":[1,{"x":null}],"version":7,"data":{"a":1},"data":{"b":2},"version":9})",
                               true, "data");
  ASSERT_TRUE(body.ok());
  EXPECT_EQ(body->version_kind, RequestBody::Version::kNumber);
  EXPECT_EQ(body->version, 7u);
  EXPECT_EQ(*body->data, R"({"a":1})");
  EXPECT_EQ(ParseRequestBody(R"({"version":null})", true, "data")->version_kind, RequestBody::Version::kNull);
  EXPECT_EQ(ParseRequestBody(R"({"version":"3"})", true, "data")->version_kind, RequestBody::Version::kOther);
  EXPECT_EQ(ParseRequestBody(R"({"version":1e999})", true, "data")->version_kind, RequestBody::Version::kOther);
  EXPECT_EQ(ParseRequestBody("{}", true, "data")->version_kind, RequestBody::Version::kAbsent);
}

TEST(RequestBodyTest, VersionIsReadFromTheTextNotFromTheDoubleItRoundsTo) {
  auto exact = ParseRequestBody(R"({"version":9007199254740992})", false, "data");
  EXPECT_EQ(exact->version_kind, RequestBody::Version::kNumber);
  EXPECT_EQ(exact->version, kMaxVersion);
  EXPECT_EQ(ParseRequestBody(R"({"version":9007199254740993})", false, "data")->version_kind,
            RequestBody::Version::kOther);
  EXPECT_EQ(ParseRequestBody(R"({"version":  1.55e1 })", false, "data")->version_kind, RequestBody::Version::kOther);
  EXPECT_EQ(ParseRequestBody(R"({"version":  1.50e2 })", false, "data")->version, 150u);
}

TEST(RequestBodyTest, WithoutReadingDataTheRulesDoNotApply) {
  auto body = ParseRequestBody(R"({"version":2,"data":{"a":[null]}})", false, "data");
  ASSERT_TRUE(body.ok());
  EXPECT_FALSE(body->data.has_value());
  EXPECT_TRUE(body->data_error.ok());
}

// {"k00000":0,...,"k<n-1>":0, <extra>} with keys of five digits.
std::string ManyKeys(int n, const std::string& extra = "") {
  std::string data = "{";
  char key[16];
  for (int i = 0; i < n; ++i) {
    snprintf(key, sizeof key, "\"k%05d\":0,", i);
    data += key;
  }
  if (extra.empty()) data.pop_back();
  return data + extra + "}";
}

TEST(RequestBodyTest, DuplicateKeysAreFoundAmongTwentyThousandKeys) {
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000) + "}"), ManyKeys(20000));
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000, R"("k00003":1)") + "}"), "rule: data.k00003: duplicate key");
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000, R"("k19999":1,"k00000":2)") + "}"), "rule: data.k19999: duplicate key");
  // Spelled differently: \u006b is 'k', \u0030 is '0'.
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000, R"("\u006b12345":1)") + "}"), "rule: data.k12345: duplicate key");
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000, R"("k0001\u0030":1)") + "}"), "rule: data.k00010: duplicate key");
  EXPECT_EQ(Data("{\"data\":" + ManyKeys(20000, R"("\u006b20000":1)") + "}"), ManyKeys(20000, R"("k20000":1)"));
}

TEST(RequestBodyTest, EscapedDuplicatesAreFoundAmongManyEscapedKeys) {
  std::string data = "{";
  for (int i = 0; i < 3000; ++i) data += "\"\\u0062" + std::to_string(i) + "\":0,";
  EXPECT_EQ(Data("{\"data\":" + data + "\"b\":1,\"b2999\":1}}"), "rule: data.b2999: duplicate key");
  EXPECT_EQ(Data("{\"data\":" + data + "\"b\":1,\"b3000\":1}}").substr(0, 10), "{\"b0\":0,\"b");
}

TEST(RequestBodyTest, KeysOfDifferentObjectsAreNotDuplicates) {
  // Large objects side by side and nested in one another, each with the same keys.
  const std::string inner = ManyKeys(40);
  std::string data = ManyKeys(40, R"("o":)" + ManyKeys(40, R"("p":)" + inner + ",\"q\":" + inner) + ",\"r\":" + inner);
  EXPECT_EQ(Data("{\"data\":" + data + "}"), data);
  // A duplicate after a large nested object is still found in its own object.
  data = ManyKeys(20, R"("o":)" + ManyKeys(40) + R"(,"k00019":1)");
  EXPECT_EQ(Data("{\"data\":" + data + "}"), "rule: data.k00019: duplicate key");
}

TEST(RequestBodyTest, MeasuresDepthAndKindOfData) {
  auto body = ParseRequestBody(R"({"data":{"a":{"b":[[1]]},"c":2}})", true, "data");
  EXPECT_EQ(body->data_depth, 4);
  EXPECT_TRUE(body->data_is_object);
  body = ParseRequestBody(R"({"data":[1]})", true, "data");
  EXPECT_FALSE(body->data_is_object);
  body = ParseRequestBody(R"({"data":"x"})", true, "data");
  EXPECT_FALSE(body->data_is_object);
}

TEST(RequestBodyTest, TwinRulesNameThePathOfTheFirstOffence) {
  EXPECT_EQ(Data(R"({"data":{"a":[1,null]}})"), "rule: data.a[1]: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":{"b":[[1,[null]]]}}})"), "rule: data.a.b[0][1][0]: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":[{"b":null}]}})"), "rule: data.a[0].b: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":{"b":1,"b":2}}})"), "rule: data.a.b: duplicate key");
  EXPECT_EQ(Data(R"({"data":{"b":1,"\u0062":2}})"), "rule: data.b: duplicate key");
  EXPECT_EQ(Data(R"({"data":{"a":{"b":1e999}}})"), "rule: data.a.b: number out of range");
  EXPECT_EQ(Data(R"({"data":{"a":[1,-1e400]}})"), "rule: data.a[1]: number out of range");
  EXPECT_EQ(Data(R"({"data":{"x":[null],"y":{"y":1,"y":1}}})"), "rule: data.x[0]: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":null,"b":[1,{"c":2}],"d":{"e":null},"b2":{"b":1}}})"),
            R"({"a":null,"b":[1,{"c":2}],"d":{"e":null},"b2":{"b":1}})");
}

// Runs of short integers are copied in one piece: the same stored form, the same offences
// and paths, the same refusals as element by element.
TEST(RequestBodyTest, RunsOfIntegersReadAsTheirElements) {
  EXPECT_EQ(Data(R"({"data":{"a":[1,-2,0,-0,30,7,100000000000000,5]}})"), R"({"a":[1,-2,0,-0,30,7,1e+14,5]})");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2 ,3, 4,5.5,6e0,7,[8,9],10,"x",11]}})"),
            R"({"a":[1,2,3,4,5.5,6,7,[8,9],10,"x",11]})");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,3,null]}})"), "rule: data.a[3]: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,[3,4,null]]}})"), "rule: data.a[2][2]: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,3,1e999]}})"), "rule: data.a[3]: number out of range");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,3],"b":[4,5,{"c":null}]}})"), "rule: data.b[2].c: arrays cannot contain null");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,01]}})"), "error: invalid JSON near byte 19");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,-]}})"), "error: invalid JSON near byte 19");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,3)"), "error: invalid JSON near byte 19");
  EXPECT_EQ(Data(R"({"data":{"a":[1,2,]}})"), "error: invalid JSON near byte 18");
}

TEST(RequestBodyTest, ReservedKeysAreReportedNotRefused) {
  auto body = ParseRequestBody(R"({"data":{"a":{"x":1,"_b":1},"_c":2}})", true, "data");
  ASSERT_TRUE(body.ok());
  EXPECT_TRUE(body->data_error.ok());
  EXPECT_EQ(body->reserved_key_path, "data.a._b");
  EXPECT_EQ(ParseRequestBody(R"({"data":{"a":1},"_other":1})", true, "data")->reserved_key_path, "");
}

TEST(RequestBodyTest, WhatIsNotOneJsonObjectIsRefusedWithItsOffset) {
  struct Case {
    std::string body;
    const char* error;
  } cases[] = {
      {"", "empty payload, a JSON object is expected"},
      {"  ", "invalid JSON near byte 2"},
      {"[1]", "request must be a JSON object {\"version\"?: N, \"data\": {...}}"},
      {"not json", "request must be a JSON object {\"version\"?: N, \"data\": {...}}"},
      {R"({"data": tru})", "invalid JSON near byte 9"},
      {R"({"data":{}} x)", "invalid JSON near byte 12"},
      {R"({"data":{}}{})", "invalid JSON near byte 11"},
      {R"({"data":{"a":1,}})", "invalid JSON near byte 15"},
      {R"({"data":{"a" 1}})", "invalid JSON near byte 13"},
      {R"({"data":{"a":01}})", "invalid JSON near byte 14"},
      {R"({"data":{"a":1.}})", "invalid JSON near byte 15"},
      {R"({"data":{"a":.5}})", "invalid JSON near byte 13"},
      {R"({"data":{"a":+1}})", "invalid JSON near byte 13"},
      {R"({"data":{"a":-}})", "invalid JSON near byte 14"},
      {R"({"data":{"a":1e}})", "invalid JSON near byte 15"},
      {R"({"data":{"a":NaN}})", "invalid JSON near byte 13"},
      {R"({"data":{"a":Infinity}})", "invalid JSON near byte 13"},
      {R"({"data":{"a":"\x"}})", "invalid JSON near byte 16"},
      {R"({"data":{"a":"\u12"}})", "invalid JSON near byte 18"},
      {R"({"data":{"a":"\ud800"}})", "invalid JSON near byte 20"},
      {R"({"data":{"a":"\udc00"}})", "invalid JSON near byte 20"},
      {R"({"data":{"a":"\ud800\u0041"}})", "invalid JSON near byte 26"},
      {R"({"data":{"a":"\u0000"}})", "invalid JSON near byte 20"},
      {"{\"data\":{\"a\":\"tab\there\"}}", "invalid JSON near byte 17"},
      {R"({"data":{"a":"open})", "invalid JSON near byte 19"},
      {R"({"data":{"a":[1,2})", "invalid JSON near byte 17"},
      {std::string("{\"data\":{}}\0", 12), "payload is not valid UTF-8 JSON text"},
      {"{\"data\":{\"a\":\"\xff\"}}", "payload is not valid UTF-8 JSON text"},
      {"{\"data\":{\"a\":\"\xed\xa0\x80\"}}", "payload is not valid UTF-8 JSON text"},
      {"{\"data\":{\"\xc3\xa9\":1}, \xc3\xa9}", "invalid JSON near byte 18"},
  };
  for (const Case& c : cases) {
    auto body = ParseRequestBody(c.body, true, "data");
    ASSERT_FALSE(body.ok()) << c.body;
    EXPECT_EQ(body.status().code(), Code::kInvalidArgument) << c.body;
    EXPECT_EQ(body.status().field(), "data") << c.body;
    EXPECT_EQ(body.status().message(), c.error) << c.body;
  }
}

TEST(RequestBodyTest, DeepNestingIsRefusedNotRecursedInto) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_EQ(Data(R"({"data":{"a":)" + deep + "}}"), "error: invalid JSON near byte 1012");
  EXPECT_EQ(Data(R"({"other":)" + deep + "}"), "error: invalid JSON near byte 1009");
}

// Random documents printed by cJSON with whitespace, escapes and its own number forms: the
// stored form written here must be the one cJSON's tree prints as.
class RandomJson {
 public:
  explicit RandomJson(unsigned seed) : random_(seed) {}

  cJSON* Object(int depth) {
    static const char* const kKeys[] = {
        "a", "b", "q\"uote", "caf\xc3\xa9", "t\tab", "ctl\x01", "emoji\xf0\x9f\x98\x80", "sl/ash", "back\\slash", "x"};
    cJSON* object = cJSON_CreateObject();
    for (int i = Pick(6); i > 0; --i) {
      const char* key = kKeys[Pick(10)];
      if (cJSON_GetObjectItemCaseSensitive(object, key) == nullptr) cJSON_AddItemToObject(object, key, Value(depth));
    }
    return object;
  }

 private:
  cJSON* Value(int depth) {
    static const double kNumbers[] = {
        0,       -0.0,   1,   -1,     0.5, 21.5, 1e21, 1e-7, 123456789.125, -3.25e-8, 9007199254740993.0,
        1.5e300, 5e-324, 0.1, 1.0 / 3};
    static const char* const kStrings[] = {"",
                                           "plain",
                                           "q\"uo}te\\ ]",
                                           "line\nbreak\r\t",
                                           "\x01\x1f\x7f",
                                           "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                                           "\xe2\x80\xa8"};
    switch (Pick(depth > 0 ? 8 : 5)) {
      case 0:
        return cJSON_CreateNumber(kNumbers[Pick(15)]);
      case 1:
        return cJSON_CreateString(kStrings[Pick(7)]);
      case 2:
        return cJSON_CreateBool(Pick(2));
      case 3:
        return cJSON_CreateNull();
      case 4:
        return cJSON_CreateNumber(Pick(100000) - 50000);
      case 5: {
        cJSON* array = cJSON_CreateArray();
        for (int i = Pick(4); i > 0; --i) {
          cJSON* item = Value(depth - 1);
          if (cJSON_IsNull(item)) {  // arrays may not hold null: keep the document valid
            cJSON_Delete(item);
            item = cJSON_CreateNumber(7);
          }
          cJSON_AddItemToArray(array, item);
        }
        return array;
      }
      default:
        return Object(depth - 1);
    }
  }
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(random_); }

  std::mt19937 random_;
};

bool HasNullInArray(const cJSON* json, bool inside_array) {
  if (inside_array && cJSON_IsNull(json)) return true;
  for (const cJSON* child = json->child; child != nullptr; child = child->next) {
    if (HasNullInArray(child, inside_array || cJSON_IsArray(json))) return true;
  }
  return false;
}

TEST(RequestBodyTest, AgreesWithCjsonOnRandomDocuments) {
  RandomJson random(2026);
  int checked = 0;
  for (int i = 0; i < 3000; ++i) {
    Json data(random.Object(5));
    if (HasNullInArray(data.get(), false)) continue;  // objects inside arrays may hold null members
    char* pretty = cJSON_Print(data.get());
    const std::string body = "{ \"version\" : 0 ,\n \"data\" : " + std::string(pretty) + " }";
    cJSON_free(pretty);
    Json reread(cJSON_Parse(body.c_str()));
    ASSERT_TRUE(reread) << body;
    const std::string expected = PrintJson(cJSON_GetObjectItemCaseSensitive(reread.get(), "data"));
    ASSERT_EQ(Data(body), expected) << body;
    ++checked;
  }
  EXPECT_GT(checked, 1000);
}

}  // namespace
}  // namespace twins
