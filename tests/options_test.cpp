// plugin_opt_* parsing: defaults, good values, and bad values named in the error.
#include "options.hpp"

#include <gtest/gtest.h>

namespace twins {
namespace {

Result<PluginOptions> Parse(const std::string& key, const std::string& value) { return ParseOptions({{key, value}}); }

TEST(OptionsTest, ConfigBytesAndSeriesPerTwinHaveDefaults) {
  auto o = ParseOptions({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->limits.max_config_bytes, 8192u);
  EXPECT_EQ(o->max_series_per_twin, 1000u);
}

TEST(OptionsTest, ConfigBytesAndSeriesPerTwinAreRead) {
  auto o = ParseOptions({{"max_config_bytes", "2"}, {"max_series_per_twin", "1"}});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->limits.max_config_bytes, 2u);
  EXPECT_EQ(o->max_series_per_twin, 1u);
  o = ParseOptions({{"max_config_bytes", "67108864"}, {"max_series_per_twin", "100000000"}});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->limits.max_config_bytes, 64u << 20);
  EXPECT_EQ(o->max_series_per_twin, 100000000u);
}

TEST(OptionsTest, BadConfigBytesOrSeriesPerTwinAreNamed) {
  const std::pair<std::pair<const char*, const char*>, const char*> cases[] = {
      {{"max_config_bytes", "big"}, "plugin_opt_max_config_bytes: 'big' is not a whole number"},
      {{"max_config_bytes", ""}, "plugin_opt_max_config_bytes: '' is not a whole number"},
      {{"max_config_bytes", "-1"}, "plugin_opt_max_config_bytes: '-1' is not a whole number"},
      {{"max_config_bytes", "1"}, "plugin_opt_max_config_bytes: 1 is out of range 2..67108864"},
      {{"max_config_bytes", "67108865"}, "plugin_opt_max_config_bytes: 67108865 is out of range 2..67108864"},
      {{"max_series_per_twin", "0"}, "plugin_opt_max_series_per_twin: 0 is out of range 1..100000000"},
      {{"max_series_per_twin", "1e3"}, "plugin_opt_max_series_per_twin: '1e3' is not a whole number"},
      {{"max_series_per_twin", "99999999999999999999999"},
       "plugin_opt_max_series_per_twin: 99999999999999999999999 is out of range 1..100000000"},
  };
  for (const auto& [option, message] : cases) {
    auto o = Parse(option.first, option.second);
    ASSERT_FALSE(o.ok()) << option.first << " " << option.second;
    EXPECT_EQ(o.status().field(), option.first);
    EXPECT_EQ(o.status().message(), message);
  }
}

}  // namespace
}  // namespace twins
