// plugin_opt_* parsing: defaults, good values, and bad values named in the error.
#include "plugin/options.hpp"

#include <gtest/gtest.h>

namespace twins {
namespace {

Result<PluginOptions> Parse(const std::string& key, const std::string& value) { return ParseOptions({{key, value}}); }

// Each {{option, value}, message}: the value is refused with that message, naming the option.
using Refusal = std::pair<std::pair<const char*, const char*>, const char*>;
void ExpectRefused(std::initializer_list<Refusal> cases) {
  for (const auto& [option, message] : cases) {
    auto o = Parse(option.first, option.second);
    ASSERT_FALSE(o.ok()) << option.first << " " << option.second;
    EXPECT_EQ(o.status().field(), option.first);
    EXPECT_EQ(o.status().message(), message);
  }
}

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
  ExpectRefused({
      {{"max_config_bytes", "big"}, "plugin_opt_max_config_bytes: 'big' is not a whole number"},
      {{"max_config_bytes", ""}, "plugin_opt_max_config_bytes: '' is not a whole number"},
      {{"max_config_bytes", "-1"}, "plugin_opt_max_config_bytes: '-1' is not a whole number"},
      {{"max_config_bytes", "1"}, "plugin_opt_max_config_bytes: 1 is out of range 2..67108864"},
      {{"max_config_bytes", "67108865"}, "plugin_opt_max_config_bytes: 67108865 is out of range 2..67108864"},
      {{"max_series_per_twin", "0"}, "plugin_opt_max_series_per_twin: 0 is out of range 1..100000000"},
      {{"max_series_per_twin", "1e3"}, "plugin_opt_max_series_per_twin: '1e3' is not a whole number"},
      {{"max_series_per_twin", "99999999999999999999999"},
       "plugin_opt_max_series_per_twin: 99999999999999999999999 is out of range 1..100000000"},
  });
}

// The limits the engine cannot work below are refused where they are read (plugin/options.cpp).
TEST(OptionsTest, LimitsBelowTheirMinimumAreRefusedNamingTheOption) {
  ExpectRefused({
      {{"max_document_bytes", "1"}, "plugin_opt_max_document_bytes: 1 is out of range 2..67108864"},
      {{"max_depth", "0"}, "plugin_opt_max_depth: 0 is out of range 1..256"},
      {{"max_documents", "0"}, "plugin_opt_max_documents: 0 is out of range 1..1000000"},
  });  // max_config_bytes: above
}

TEST(OptionsTest, RestHardeningOptionsHaveDefaults) {
  auto o = ParseOptions({});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->rest_threads, 64);
  EXPECT_EQ(o->rest_request_timeout_ms, 10000);
  EXPECT_EQ(o->rest_auth_failures, 10u);
  EXPECT_TRUE(o->rest_cors_origins.empty());
  EXPECT_EQ(o->rest_max_streams, 16);
  EXPECT_EQ(o->rest_stream_max_lag, 10000u);
}

TEST(OptionsTest, RestHardeningOptionsAreRead) {
  auto o = ParseOptions({{"rest_request_timeout_ms", "2500"},
                         {"rest_auth_failures", "0"},
                         {"rest_cors_origins", "https://a.example.com, http://localhost:3000"},
                         {"rest_cors_origins", "https://b.example.com"},
                         {"rest_max_streams", "1024"},
                         {"rest_stream_max_lag", "1"}});
  ASSERT_TRUE(o.ok()) << o.status().message();
  EXPECT_EQ(o->rest_max_streams, 1024);
  EXPECT_EQ(o->rest_stream_max_lag, 1u);
  EXPECT_EQ(o->rest_request_timeout_ms, 2500);
  EXPECT_EQ(o->rest_auth_failures, 0u);
  EXPECT_EQ(o->rest_cors_origins,
            (std::vector<std::string>{"https://a.example.com", "http://localhost:3000", "https://b.example.com"}));
}

TEST(OptionsTest, BadRestHardeningOptionsAreNamed) {
  ExpectRefused({
      {{"rest_request_timeout_ms", "99"}, "plugin_opt_rest_request_timeout_ms: 99 is out of range 100..600000"},
      {{"rest_auth_failures", "ten"}, "plugin_opt_rest_auth_failures: 'ten' is not a whole number"},
      {{"rest_cors_origins", "https://a.example.com/app"},
       "plugin_opt_rest_cors_origins: 'https://a.example.com/app' is not an origin (scheme://host[:port], no path)"},
      {{"rest_cors_origins", "*"},
       "plugin_opt_rest_cors_origins: '*' is not an origin (scheme://host[:port], no path)"},
      {{"rest_cors_origins", " , "}, "plugin_opt_rest_cors_origins: must not be empty"},
      {{"rest_max_streams", "0"}, "plugin_opt_rest_max_streams: 0 is out of range 1..1024"},
      {{"rest_max_streams", "1025"}, "plugin_opt_rest_max_streams: 1025 is out of range 1..1024"},
      {{"rest_stream_max_lag", "0"}, "plugin_opt_rest_stream_max_lag: 0 is out of range 1..100000000"},
      {{"rest_stream_max_lag", "-5"}, "plugin_opt_rest_stream_max_lag: '-5' is not a whole number"},
  });
}

TEST(OptionsTest, EventsTopicIsRead) {
  for (const char* topic : {"events", "/twins/events", "a//b", "\xc3\xa9v\xc3\xa8nements/\xf0\x9f\x93\xa1"}) {
    auto o = Parse("events_topic", topic);
    ASSERT_TRUE(o.ok()) << topic << ": " << o.status().message();
    EXPECT_EQ(o->events_topic, topic);
  }
  EXPECT_EQ(ParseOptions({})->events_topic, "");
}

// What subscribers could not match, or their clients would refuse (libmosquitto drops the
// connection on a topic that is not valid UTF-8 or holds a control character).
TEST(OptionsTest, BadEventsTopicIsRefusedWithAClearMessage) {
  const char* not_text =
      "plugin_opt_events_topic: is not a topic name: not valid UTF-8, or it holds a control character or a "
      "noncharacter";
  ExpectRefused({
      {{"events_topic", "events/\xff"}, not_text},
      {{"events_topic", "events/\xc3"}, not_text},          // cut short
      {{"events_topic", "events/\xc0\xaf"}, not_text},      // overlong '/'
      {{"events_topic", "events/\xed\xa0\x80"}, not_text},  // surrogate
      {{"events_topic", "events\tfeed"}, not_text},
      {{"events_topic", "events/\x7f"}, not_text},
      {{"events_topic", "events/\xc2\x85"}, not_text},      // NEL, a C1 control
      {{"events_topic", "events/\xef\xbf\xbf"}, not_text},  // U+FFFF
      {{"events_topic", "events/#"},
       "plugin_opt_events_topic: 'events/#' is not a topic name (no '+', '#', or trailing '/')"},
      {{"events_topic", "events/+/x"},
       "plugin_opt_events_topic: 'events/+/x' is not a topic name (no '+', '#', or trailing '/')"},
      {{"events_topic", "events/"},
       "plugin_opt_events_topic: 'events/' is not a topic name (no '+', '#', or trailing '/')"},
      {{"events_topic", ""}, "plugin_opt_events_topic: '' is not a topic name (no '+', '#', or trailing '/')"},
      {{"events_topic", "$SCW/twins/events"}, "plugin_opt_events_topic: must not be under $SCW/twins"},
  });
  EXPECT_EQ(Parse("events_topic", std::string(1025, 'e')).status().message(),
            "plugin_opt_events_topic: is longer than 1024 bytes");
  EXPECT_TRUE(Parse("events_topic", std::string(1024, 'e')).ok());
}

TEST(OptionsTest, TheStoreIsRocksDbUnlessAPostgresqlUriIsGiven) {
  auto defaults = ParseOptions({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->postgres.uri, "");
  EXPECT_EQ(defaults->postgres.schema, "twins");
  EXPECT_EQ(defaults->postgres.timeout_ms, 5000);
  auto shared = ParseOptions({{"store", "postgresql://twins@db:5432/twins?sslmode=require"},
                              {"store_password_file", "/etc/mosquitto/twins.pgpass"},
                              {"store_schema", "fleet_2"},
                              {"store_timeout_ms", "1500"}});
  ASSERT_TRUE(shared.ok()) << shared.status().message();
  EXPECT_EQ(shared->postgres.uri, "postgresql://twins@db:5432/twins?sslmode=require");
  EXPECT_EQ(shared->postgres.password_file, "/etc/mosquitto/twins.pgpass");
  EXPECT_EQ(shared->postgres.schema, "fleet_2");
  EXPECT_EQ(shared->postgres.timeout_ms, 1500);
  EXPECT_TRUE(Parse("store", "postgres://h/db").ok());
}

TEST(OptionsTest, BadStoreOptionsAreNamed) {
  constexpr char kNotUri[] = "plugin_opt_store: must be a postgresql:// URI (leave it unset for RocksDB at db_path)";
  constexpr char kSchema[] =
      "plugin_opt_store_schema: use lower-case letters, digits and '_', not starting with a digit";
  ExpectRefused({
      {{"store", "host=db dbname=twins"}, kNotUri},
      {{"store", "rocksdb"}, kNotUri},
      {{"store", "mysql://db/twins"}, kNotUri},
      {{"store", ""}, kNotUri},
      {{"store_password_file", ""}, "plugin_opt_store_password_file: must not be empty"},
      {{"store_schema", "Twins"}, kSchema},
      {{"store_schema", "1twins"}, kSchema},
      {{"store_schema", "twins\"; DROP SCHEMA public; --"}, kSchema},
      {{"store_schema", std::string(64, 'a').c_str()}, kSchema},
      {{"store_timeout_ms", "99"}, "plugin_opt_store_timeout_ms: 99 is out of range 100..600000"},
  });
}

}  // namespace
}  // namespace twins
