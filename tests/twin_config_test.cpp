#include "engine/twin_config.hpp"

#include <gtest/gtest.h>

#include "engine/json.hpp"

namespace twins {
namespace {

Result<TwinConfig> Parse(const char* text) {
  Json json(cJSON_Parse(text));
  EXPECT_TRUE(json) << text;
  return ParseTwinConfig(json.get());
}

TEST(TwinConfigTest, ParsesTagsAndTriggersAtEveryDepth) {
  auto config = Parse(R"({"documents":{"current":{
      "_tags":{"site":"paris"},"_tsdb_trigger":"on-update",
      "motor":{"_tsdb_trigger":"on-change","rpm":{"_tags":{"unit":"rpm"}}}}}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  const ConfigNode& current = config->documents.at("current");
  EXPECT_EQ(current.tags->at("site"), "paris");
  EXPECT_EQ(current.trigger, TsdbTrigger::kOnUpdate);
  const ConfigNode& motor = current.children.at("motor");
  EXPECT_EQ(motor.trigger, TsdbTrigger::kOnChange);
  EXPECT_FALSE(motor.tags.has_value());
  EXPECT_EQ(motor.children.at("rpm").tags->at("unit"), "rpm");
}

TEST(TwinConfigTest, NullMeansNotSet) {
  auto config = Parse(R"({"documents":{"a":{"_tags":null,"_tsdb_trigger":null,"k":null},"b":null}})");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_FALSE(config->documents.at("a").tags.has_value());
  EXPECT_FALSE(config->documents.at("a").trigger.has_value());
  EXPECT_TRUE(config->documents.at("a").children.empty());
  EXPECT_EQ(config->documents.count("b"), 0u);
}

TEST(TwinConfigTest, EmptyConfigIsValid) {
  EXPECT_TRUE(Parse("{}").ok());
  EXPECT_TRUE(Parse(R"({"documents":{}})").ok());
}

TEST(TwinConfigTest, InvalidConfigsNameThePath) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {R"({"other":{}})", "data.other: unknown key, _config data holds only \"documents\""},
      {R"({"documents":[]})", "data.documents: must be an object"},
      {R"({"documents":{"bad name":{}}})", "data.documents.bad name: document name may only contain [-_.~0-9a-zA-Z]"},
      {R"({"documents":{"_config":{}}})", "data.documents._config: _config cannot configure itself"},
      {R"({"documents":{"d":{"_tsdb_trigger":"always"}}})",
       "data.documents.d._tsdb_trigger: must be \"on-update\" or \"on-change\""},
      {R"({"documents":{"d":{"_tsdb_trigger":1}}})",
       "data.documents.d._tsdb_trigger: must be \"on-update\" or \"on-change\""},
      {R"({"documents":{"d":{"_tags":["a"]}}})", "data.documents.d._tags: _tags must be an object of string values"},
      {R"({"documents":{"d":{"_tags":{"a":1}}}})", "data.documents.d._tags.a: tag values must be strings"},
      {R"({"documents":{"d":{"k":{"_unknown":1}}}})",
       "data.documents.d.k._unknown: unknown configuration key (known: _tags, _tsdb_trigger)"},
      {R"({"documents":{"d":{"k":5}}})", "data.documents.d.k: must be an object"},
  };
  for (const Case& c : cases) {
    auto config = Parse(c.text);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
    EXPECT_EQ(config.status().field(), "data");
    EXPECT_EQ(config.status().message(), c.message);
  }
}

}  // namespace
}  // namespace twins
