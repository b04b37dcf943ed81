#include "tsdb/points.hpp"
#include "tsdb/series.hpp"

#include <gtest/gtest.h>

#include <string>

#include "engine/json.hpp"
#include "engine/merge.hpp"

namespace twins {
namespace {

class TsdbPointsTest : public testing::Test {
 protected:
  // `doc_config` is the `_config` entry of document "doc", as a user would write it.
  void Configure(const std::string& doc_config) {
    Json data(cJSON_Parse((R"({"documents":{"doc":)" + doc_config + "}}").c_str()));
    ASSERT_TRUE(data) << doc_config;
    auto parsed = ParseTwinConfig(data.get());
    ASSERT_TRUE(parsed.ok()) << parsed.status().message();
    config_ = parsed->documents["doc"];
  }

  // The points of a put of `data` over `before` ("" when the document is new), rendered as
  // "path=value{tags}" separated by spaces.
  std::string Put(const std::string& before, const std::string& data) {
    Json request = Parse(data);
    Json old = Parse(before);
    return Render(EvaluateTriggers(config_, old.get(), request.get(), request.get()));
  }

  std::string Patch(const std::string& before, const std::string& patch) {
    Json request = Parse(patch);
    Json old = Parse(before);
    std::string merged;
    EXPECT_TRUE(MergePatch(before.empty() ? "{}" : before, PrintJson(request.get()), &merged).ok());
    Json after = Parse(merged);
    return Render(EvaluateTriggers(config_, old.get(), request.get(), after.get()));
  }

  static Json Parse(const std::string& text) {
    if (text.empty()) return nullptr;
    Json json(cJSON_Parse(text.c_str()));
    EXPECT_TRUE(json) << text;
    return json;
  }

  static std::string Render(const std::vector<TsdbPoint>& points) {
    std::string out;
    for (const TsdbPoint& point : points) {
      if (!out.empty()) out += ' ';
      out += point.json_path + "=" + FormatNumber(point.value);
      if (point.tags.empty()) continue;
      out += '{';
      for (const auto& [k, v] : point.tags) out += (out.back() == '{' ? "" : ",") + k + "=" + v;
      out += '}';
    }
    return out;
  }

  static std::string FormatNumber(double value) {
    std::string text = std::to_string(value);
    text.erase(text.find_last_not_of('0') + 1);
    if (text.back() == '.') text.pop_back();
    return text;
  }

  ConfigNode config_;
};

TEST_F(TsdbPointsTest, DocumentTriggerAppliesToEveryNumericLeaf) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200,"load":{"pct":80}}})"),
            "temp=21.5 motor.rpm=1200 motor.load.pct=80");
}

TEST_F(TsdbPointsTest, DocumentWithoutTriggerPushesNothing) {
  Configure(R"({"_tags":{"site":"paris"},"motor":{"_tags":{"unit":"rpm"}}})");
  EXPECT_FALSE(HasTrigger(config_));
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200}})"), "");
}

TEST_F(TsdbPointsTest, KeyTriggerAppliesOnlyToItsSubtree) {
  Configure(R"({"motor":{"_tsdb_trigger":"on-update"}})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200,"fan":{"speed":3}},"other":{"rpm":1}})"),
            "motor.rpm=1200 motor.fan.speed=3");
}

TEST_F(TsdbPointsTest, TriggerOnKeyAbsentFromTheWritePushesNothing) {
  Configure(R"({"motor":{"_tsdb_trigger":"on-update"}})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"fan":{"rpm":3}})"), "");
}

TEST_F(TsdbPointsTest, DeeperTriggerOverridesForItsSubtree) {
  Configure(R"({"_tsdb_trigger":"on-update","motor":{"_tsdb_trigger":"on-change"}})");
  EXPECT_EQ(Put(R"({"temp":21.5,"motor":{"rpm":1200,"load":80}})", R"({"temp":21.5,"motor":{"rpm":1300,"load":80}})"),
            "temp=21.5 motor.rpm=1300");
}

TEST_F(TsdbPointsTest, DeeperOnUpdateOverridesOnChange) {
  Configure(R"({"_tsdb_trigger":"on-change","motor":{"_tsdb_trigger":"on-update"}})");
  EXPECT_EQ(Put(R"({"temp":21.5,"motor":{"rpm":1200}})", R"({"temp":21.5,"motor":{"rpm":1200}})"), "motor.rpm=1200");
}

TEST_F(TsdbPointsTest, NullTriggerIsNotSetSoDeeperSettingsDecide) {
  Configure(R"({"_tsdb_trigger":null,"motor":{"_tsdb_trigger":"on-update"}})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200}})"), "motor.rpm=1200");
}

TEST_F(TsdbPointsTest, NullTriggerOnKeyInheritsFromAncestor) {
  Configure(R"({"_tsdb_trigger":"on-update","motor":{"_tsdb_trigger":null,"_tags":null}})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200}})"), "temp=21.5 motor.rpm=1200");
}

TEST_F(TsdbPointsTest, NearestTagsReplaceAncestorTags) {
  Configure(R"({"_tsdb_trigger":"on-update","_tags":{"site":"paris","room":"a"},)"
            R"("motor":{"_tags":{"unit":"rpm"},"fan":{"_tsdb_trigger":"on-update"}}})");
  EXPECT_EQ(Put("", R"({"temp":21.5,"motor":{"rpm":1200,"fan":{"speed":3}}})"),
            "temp=21.5{room=a,site=paris} motor.rpm=1200{unit=rpm} motor.fan.speed=3{unit=rpm}");
}

TEST_F(TsdbPointsTest, EmptyTagsClearAncestorTags) {
  Configure(R"({"_tsdb_trigger":"on-update","_tags":{"site":"paris"},"motor":{"_tags":{}}})");
  EXPECT_EQ(Put("", R"({"temp":1,"motor":{"rpm":2}})"), "temp=1{site=paris} motor.rpm=2");
}

TEST_F(TsdbPointsTest, OnChangePushesChangedAndNewLeaves) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_TRUE(HasOnChangeTrigger(config_));
  EXPECT_EQ(Put(R"({"a":1,"b":2,"c":{"d":3}})", R"({"a":1,"b":2.5,"c":{"d":3,"e":4},"f":5})"), "b=2.5 c.e=4 f=5");
}

TEST_F(TsdbPointsTest, OnChangeWithIdenticalDataPushesNothing) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Put(R"({"a":1,"b":{"c":true}})", R"({"a":1,"b":{"c":true}})"), "");
  EXPECT_EQ(Patch(R"({"a":1,"b":{"c":true}})", R"({"a":1})"), "");
}

TEST_F(TsdbPointsTest, OnChangeOfNewDocumentPushesEveryLeaf) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Put("", R"({"a":1,"b":{"c":2}})"), "a=1 b.c=2");
}

TEST_F(TsdbPointsTest, OnChangeCountsALeafThatWasNotANumberAsChanged) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Put(R"({"a":"1","b":{"c":1},"d":true,"e":null})", R"({"a":1,"b":1,"d":1,"e":0})"), "a=1 b=1 d=1 e=0");
}

TEST_F(TsdbPointsTest, OnUpdatePatchPushesOnlyLeavesInThePatch) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Patch(R"({"a":1,"b":2,"c":{"d":3,"e":4}})", R"({"b":2,"c":{"e":5}})"), "b=2 c.e=5");
}

TEST_F(TsdbPointsTest, OnChangePatchPushesOnlyChangedLeavesOfThePatch) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Patch(R"({"a":1,"b":2,"c":{"d":3,"e":4}})", R"({"b":2,"c":{"e":5}})"), "c.e=5");
}

TEST_F(TsdbPointsTest, PatchReplacingAnObjectByAValuePushesIt) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Patch(R"({"a":{"x":1}})", R"({"a":7})"), "a=7");
}

TEST_F(TsdbPointsTest, BooleansArePushedAsOneAndZero) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Put("", R"({"on":true,"off":false})"), "on=1 off=0");
}

TEST_F(TsdbPointsTest, OnChangeComparesBooleans) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Put(R"({"on":true,"off":false})", R"({"on":true,"off":true})"), "off=1");
}

TEST_F(TsdbPointsTest, ArrayElementsAreLeavesNamedByIndex) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Put("", R"({"arr":[1,"x",{"v":3},[4,false]]})"), "arr.0=1 arr.2.v=3 arr.3.0=4 arr.3.1=0");
}

TEST_F(TsdbPointsTest, OnChangeComparesArraysElementByElement) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Put(R"({"arr":[1,2,3]})", R"({"arr":[1,5]})"), "arr.1=5");
  EXPECT_EQ(Put(R"({"arr":[1,2]})", R"({"arr":[1,2,3]})"), "arr.2=3");
}

TEST_F(TsdbPointsTest, PatchReplacesArraysWholeSoEveryElementIsPresent) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Patch(R"({"arr":[1,2],"b":1})", R"({"arr":[1,2,3]})"), "arr.0=1 arr.1=2 arr.2=3");
}

TEST_F(TsdbPointsTest, ConfigurationAddressesArrayElementsByIndex) {
  Configure(R"({"arr":{"1":{"_tsdb_trigger":"on-update"}}})");
  EXPECT_EQ(Put("", R"({"arr":[10,20,30]})"), "arr.1=20");
}

// Past 8 configured children, an object's or array's are found through an index: the same
// settings as through the map, for keys and for array indexes, absent ones included.
TEST_F(TsdbPointsTest, ManyConfiguredChildrenAreFoundByName) {
  std::string config = R"({"obj":{)", array = R"("arr":{)";
  for (int i = 0; i < 30; i += 3) {
    const std::string sep = i == 0 ? "" : ",";
    config += sep + "\"k" + std::to_string(i) + R"(":{"_tsdb_trigger":"on-update","_tags":{"n":")" + std::to_string(i) +
              "\"}}";
    array += sep + "\"" + std::to_string(i) + R"(":{"_tsdb_trigger":"on-update"})";
  }
  Configure(config + "}," + array + "}}");
  std::string obj = "{", arr = "[";
  for (int i = 0; i < 30; ++i) {
    obj += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":" + std::to_string(i);
    arr += (i == 0 ? "" : ",") + std::to_string(i);
  }
  const auto points = EvaluateTriggers(config_, "", R"({"obj":)" + obj + R"(},"arr":)" + arr + "]}").points;
  std::string rendered;
  for (const TsdbPoint& point : points) {
    rendered += point.json_path + "=" + FormatNumber(point.value);
    rendered += point.tags.empty() ? " " : "(" + point.tags.at("n") + ") ";
  }
  std::string expected;
  for (int i = 0; i < 30; i += 3)
    expected += "obj.k" + std::to_string(i) + "=" + std::to_string(i) + "(" + std::to_string(i) + ") ";
  for (int i = 0; i < 30; i += 3) expected += "arr." + std::to_string(i) + "=" + std::to_string(i) + " ";
  EXPECT_EQ(rendered, expected);
}

TEST_F(TsdbPointsTest, NonNumericLeavesAreIgnored) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Put("", R"({"s":"21.5","n":null,"o":{},"a":[],"t":"true","x":2})"), "x=2");
}

TEST_F(TsdbPointsTest, TriggerOnAStringKeyPushesNothing) {
  Configure(R"({"name":{"_tsdb_trigger":"on-update"}})");
  EXPECT_EQ(Put("", R"({"name":"pump","x":2})"), "");
}

TEST_F(TsdbPointsTest, RemovedKeysAreNotPushed) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Patch(R"({"a":1,"b":{"c":2},"d":3})", R"({"a":null,"b":{"c":null},"d":4})"), "d=4");
  EXPECT_EQ(Put(R"({"a":1,"b":2})", R"({"b":2})"), "b=2");
}

TEST_F(TsdbPointsTest, RemovedKeysAreNotPushedOnChangeEither) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  EXPECT_EQ(Patch(R"({"a":1,"b":2})", R"({"a":null})"), "");
  EXPECT_EQ(Put(R"({"a":1,"b":2})", R"({"b":2})"), "");
}

TEST_F(TsdbPointsTest, JsonPathEscapesKeysAndNamesTheEmptyKey) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  EXPECT_EQ(Put("", R"({"a.b":{"c d":1,"":2},"t~;é":3,"ok_key-1":4})"),
            "a%2Eb.c%20d=1 a%2Eb._=2 t%7E%3B%C3%A9=3 ok_key-1=4");
}

TEST_F(TsdbPointsTest, LargeObjectsAreComparedKeyByKey) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  std::string before = "{", after = "{";
  for (int i = 0; i < 40; ++i) {
    const std::string sep = i == 0 ? "" : ",";
    before += sep + "\"k" + std::to_string(i) + "\":" + std::to_string(i);
    after += sep + "\"k" + std::to_string(39 - i) + "\":" + std::to_string(39 - i == 17 ? 99 : 39 - i);
  }
  EXPECT_EQ(Put(before + "}", after + "}"), "k17=99");
  EXPECT_EQ(Patch(before + "}", R"({"k3":3,"k4":5})"), "k4=5");
}

// Admits the first `open` points it is asked about, then closes.
class FirstPoints final : public PointFilter {
 public:
  explicit FirstPoints(size_t open) : open_(open) {}
  bool Admit(uint64_t, const std::map<std::string, std::string>*) override { return ++asked_ <= open_; }
  bool Closed() const override { return asked_ >= open_; }
  size_t asked() const { return asked_; }

 private:
  size_t open_;
  size_t asked_ = 0;
};

std::string NumberArray(int count, int value, int changed_every = 0) {
  std::string data = "{\"a\":[";
  for (int i = 0; i < count; ++i) {
    data += (i ? "," : "") + std::to_string(changed_every && i % changed_every == 0 ? value + 1 : value);
  }
  return data + "]}";
}

// A json_path longer than a series name may be can never be sent: such points are not made
// (nor copied: a long key over a long array would cost a copy per element), only counted.
TEST_F(TsdbPointsTest, PointsWhosePathIsTooLongForASeriesNameAreCountedNotMade) {
  Configure(R"({"_tsdb_trigger":"on-update"})");
  const std::string long_key(kMaxSeriesBytes, 'k');
  const std::string data = R"({")" + long_key + R"(":[1,2,3],"short":4,")" + std::string(100, 'm') + R"(":5})";
  const auto points = EvaluateTriggers(config_, "", data);
  EXPECT_EQ(points.too_long, 3u);
  EXPECT_EQ(Render(points.points), "short=4 " + std::string(100, 'm') + "=5");
}

TEST_F(TsdbPointsTest, ClosedFilterIsAskedNoMoreAndTheRestIsCounted) {
  Configure(R"({"_tsdb_trigger":"on-update","x":{"_tags":{"k":"v"}}})");
  const std::string data = R"({"a":[1,2,3],"x":{"y":4,"z":[5,true]},"s":"t","b":6})";
  const auto all = EvaluateTriggers(config_, "", data);
  ASSERT_EQ(Render(all.points), "a.0=1 a.1=2 a.2=3 x.y=4{k=v} x.z.0=5{k=v} x.z.1=1{k=v} b=6");
  for (size_t open = 0; open <= all.points.size(); ++open) {
    FirstPoints filter(open);
    const auto some = EvaluateTriggers(config_, "", data, &filter);
    EXPECT_EQ(filter.asked(), open);
    EXPECT_EQ(Render(some.points), Render({all.points.begin(), all.points.begin() + open}));
    EXPECT_EQ(some.left_out, all.points.size() - open);
  }
}

TEST_F(TsdbPointsTest, OnChangeOverALongArrayComparesEveryIndex) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  const std::string before = NumberArray(32000, 7);
  const std::string after = NumberArray(32000, 7, 1000);  // a.0, a.1000, ... a.31000 changed
  const auto result = EvaluateTriggers(config_, before, after);
  ASSERT_EQ(result.points.size(), 32u);
  EXPECT_EQ(result.points[1].json_path, "a.1000");
  EXPECT_EQ(result.points[31].json_path, "a.31000");
  EXPECT_EQ(result.points[31].value, 8);
  // Counted the same way once the filter closes: the changed leaves only.
  FirstPoints filter(2);
  const auto counted = EvaluateTriggers(config_, before, after, &filter);
  EXPECT_EQ(Render(counted.points), "a.0=8 a.1000=8");
  EXPECT_EQ(counted.left_out, 30u);
  // A longer or shorter array: new indices are changes, missing ones are not pushed.
  EXPECT_EQ(EvaluateTriggers(config_, before, NumberArray(32001, 7)).points.size(), 1u);
  EXPECT_EQ(EvaluateTriggers(config_, before, NumberArray(31999, 7)).points.size(), 0u);
}

TEST_F(TsdbPointsTest, OnChangeFindsMembersPastLargeSiblingsAtEveryDepth) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  // Each level stores a large sibling first; the write names the way down first. The
  // stored text is long enough for its brackets to be indexed.
  std::string sibling = "[";
  for (int i = 0; i < 40; ++i) sibling += std::string(i ? "," : "") + "[[[[" + std::to_string(i) + "]]]]";
  sibling += "]";
  std::string before = R"({"v":1,"w":2})", after = R"({"w":2,"v":3})";
  for (int level = 0; level < 20; ++level) {
    before = R"({"s":)" + sibling + R"(,"z":)" + before + "}";
    after = R"({"z":)" + after + R"(,"s":)" + sibling + "}";
  }
  ASSERT_GT(before.size(), 4096u);
  const auto result = EvaluateTriggers(config_, before, after);
  ASSERT_EQ(result.points.size(), 1u);
  std::string path;
  for (int level = 0; level < 20; ++level) path += "z.";
  EXPECT_EQ(result.points[0].json_path, path + "v");
  EXPECT_EQ(result.points[0].value, 3);
}

TEST_F(TsdbPointsTest, OnChangeComparesNumbersByValueAndKeysByName) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  // Texts another writer may have stored: the same numbers spelled otherwise, escaped keys.
  EXPECT_EQ(Render(EvaluateTriggers(config_, R"({"a":1.0,"b":-0,"c":1E20,"d":12,"caf\u00e9":5})",
                                    "{\"a\":1,\"b\":0,\"c\":100000000000000000000,\"d\":13,\"caf\xC3\xA9\":5}")
                       .points),
            "d=13");
  EXPECT_EQ(Render(EvaluateTriggers(config_, R"({"caf\u00e9":5})", "{\"caf\xC3\xA9\":6}").points), "caf%C3%A9=6");
  EXPECT_EQ(Render(EvaluateTriggers(config_, R"({"x":5})", R"({"\u0078":5,"y":false})").points), "y=0");
}

// Keys of the data before spelled otherwise ("\u006b" for 'k') or escaped in the stored form
// ("\n"), found in and out of order, through the index and beside it.
TEST_F(TsdbPointsTest, LargeObjectsMatchKeysSpelledOtherwiseInAnyOrder) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  auto key = [](int i, bool stored) {
    if (i % 3 == 1) return "\"\\nk" + std::to_string(i) + "\"";
    return std::string(i % 3 == 0 && !stored ? "\"\\u006b" : "\"k") + std::to_string(i) + "\"";
  };
  std::string before = "{", forward = "{", backward = "{";
  for (int i = 0; i < 2000; ++i) {
    const std::string sep = i == 0 ? "" : ",";
    before += sep + key(i, false) + ":" + std::to_string(i);
    forward += sep + key(i, true) + ":" + std::to_string(i == 1500 || i == 1001 ? -1 : i);
    const int j = 1999 - i;
    backward += sep + key(j, true) + ":" + std::to_string(j == 3 || j == 1502 ? -1 : j);
  }
  EXPECT_EQ(Render(EvaluateTriggers(config_, before + "}", forward + "}").points), "k1001=-1 k1500=-1");
  EXPECT_EQ(Render(EvaluateTriggers(config_, before + "}", backward + "}").points), "k1502=-1 k3=-1");
}

TEST_F(TsdbPointsTest, LargeObjectsAreSearchedInAnyOrder) {
  Configure(R"({"_tsdb_trigger":"on-change"})");
  std::string before = "{", forward = "{", backward = "{";
  for (int i = 0; i < 2000; ++i) {
    const std::string sep = i == 0 ? "" : ",";
    before += sep + "\"k" + std::to_string(i) + "\":" + std::to_string(i);
    forward += sep + "\"k" + std::to_string(i) + "\":" + std::to_string(i % 500 == 0 ? -1 : i);
    backward += sep + "\"k" + std::to_string(1999 - i) + "\":" + std::to_string(1999 - i == 1500 ? -1 : 1999 - i);
  }
  EXPECT_EQ(Render(EvaluateTriggers(config_, before + "}", forward + "}").points), "k0=-1 k500=-1 k1000=-1 k1500=-1");
  EXPECT_EQ(Render(EvaluateTriggers(config_, before + "}", backward + "}").points), "k1500=-1");
}

}  // namespace
}  // namespace twins
