// TsdbObserver on a real engine (RocksDB in a temporary folder), with a sink that records.
#include "tsdb/observer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>

#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

class RecordingSink : public SampleSink {
 public:
  void Push(std::vector<Sample> samples) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Sample& s : samples) samples_.push_back(std::move(s));
  }
  // "twin/document/json_path=value" of each sample since the last call.
  std::string Take() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const Sample& s : samples_) {
      out += (out.empty() ? "" : " ") + s.twin + "/" + s.document + "/" + s.point.json_path + "=" +
             std::to_string(static_cast<long long>(s.point.value));
    }
    last_ = samples_;
    samples_.clear();
    return out;
  }
  std::vector<Sample> last_;

 private:
  std::mutex mutex_;
  std::vector<Sample> samples_;
};

class TsdbObserverTest : public testing::Test {
 protected:
  void SetUp() override {
    auto store = OpenRocksDbStore(dir_.sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    engine_ = std::make_unique<Engine>(std::move(store).value(), Limits());
    observer_ = std::make_unique<TsdbObserver>(sink_);
    engine_->AddObserver(observer_.get());
  }

  void Write(const std::string& doc, const std::string& body, bool patch = false, const std::string& twin = "dev1") {
    auto request = ParseWriteRequest(body, Limits());
    ASSERT_TRUE(request.ok()) << request.status().message();
    auto written = patch ? engine_->Patch(twin, doc, request.value()) : engine_->Put(twin, doc, request.value());
    ASSERT_TRUE(written.ok()) << written.status().message();
  }

  test::TempDir dir_;
  RecordingSink sink_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<TsdbObserver> observer_;
};

TEST_F(TsdbObserverTest, ConfiguredDocumentWriteIsPushedWithTwinDocumentAndTime) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update","_tags":{"site":"paris"}}}}})");
  const auto now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  Write("state", R"({"data":{"temp":21,"motor":{"rpm":1200},"label":"x"}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/temp=21 dev1/state/motor.rpm=1200");
  ASSERT_EQ(sink_.last_.size(), 2u);
  EXPECT_NEAR(static_cast<double>(sink_.last_[0].time), static_cast<double>(now), 2);
  EXPECT_EQ(sink_.last_[1].point.tags, (std::map<std::string, std::string>{{"site", "paris"}}));
}

TEST_F(TsdbObserverTest, WritesWithoutConfigurationPushNothing) {
  Write("state", R"({"data":{"temp":21}})");
  Write("_config", R"({"data":{"documents":{"other":{"_tsdb_trigger":"on-update"}}}})");
  Write("state", R"({"data":{"temp":22}})");
  EXPECT_EQ(sink_.Take(), "");
}

TEST_F(TsdbObserverTest, ConfigurationAppliesFromTheNextWriteAndIsNeverPushedItself) {
  Write("state", R"({"data":{"temp":21}})");
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update","x":{"_tags":{"a":"1"}}}}}})");
  EXPECT_EQ(sink_.Take(), "");
  Write("state", R"({"data":{"temp":22}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/temp=22");
}

TEST_F(TsdbObserverTest, PatchingTheTriggerToNullStopsThePush) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  Write("state", R"({"data":{"temp":21}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/temp=21");
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":null}}}})", true);
  Write("state", R"({"data":{"temp":22}})");
  EXPECT_EQ(sink_.Take(), "");
}

TEST_F(TsdbObserverTest, OnChangeComparesWithTheStoredDocument) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-change"}}}})");
  Write("state", R"({"data":{"a":1,"b":2}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/a=1 dev1/state/b=2");
  Write("state", R"({"data":{"a":1,"b":2}})");
  EXPECT_EQ(sink_.Take(), "");
  Write("state", R"({"data":{"b":3}})", true);
  EXPECT_EQ(sink_.Take(), "dev1/state/b=3");
}

TEST_F(TsdbObserverTest, FailedWriteIsNotPushed) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  Write("state", R"({"data":{"a":1}})");
  sink_.Take();
  auto request = ParseWriteRequest(R"({"version":7,"data":{"a":2}})", Limits());
  ASSERT_TRUE(request.ok());
  EXPECT_FALSE(engine_->Put("dev1", "state", request.value()).ok());
  EXPECT_EQ(sink_.Take(), "");
}

TEST_F(TsdbObserverTest, ATwinFeedsAtMostMaxSeriesAndTheRestIsDroppedAndCounted) {
  std::vector<std::string> logged;
  engine_->RemoveObserver(observer_.get());  // replaced by one with other settings
  observer_ = std::make_unique<TsdbObserver>(sink_, 3,
                                             [&](LogLevel, const std::string& line) { logged.push_back(line); });
  engine_->AddObserver(observer_.get());
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  Write("state", R"({"data":{"a":[1,2,3,4,5]}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/a.0=1 dev1/state/a.1=2 dev1/state/a.2=3");
  EXPECT_EQ(observer_->dropped(), 2u);
  // The series fed go on; new ones, in any document, are dropped.
  Write("state", R"({"data":{"b":7,"a":[6,7,8,9]}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/a.0=6 dev1/state/a.1=7 dev1/state/a.2=8");
  EXPECT_EQ(observer_->dropped(), 4u);
  // Another twin has its own count.
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})", false, "dev2");
  Write("state", R"({"data":{"x":1,"y":2}})", false, "dev2");
  EXPECT_EQ(sink_.Take(), "dev2/state/x=1 dev2/state/y=2");
  ASSERT_EQ(logged.size(), 1u);  // once per twin
  EXPECT_EQ(logged[0],
            "tsdb: twin dev1 feeds 3 series, the limit (plugin_opt_max_series_per_twin): points of "
            "other series are dropped");
}

TEST_F(TsdbObserverTest, OtherTagsMakeAnotherSeries) {
  engine_->RemoveObserver(observer_.get());  // replaced by one with other settings
  observer_ = std::make_unique<TsdbObserver>(sink_, 1);
  engine_->AddObserver(observer_.get());
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update","_tags":{"site":"a"}}}}})");
  Write("state", R"({"data":{"t":1}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/t=1");
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update","_tags":{"site":"b"}}}}})");
  Write("state", R"({"data":{"t":2}})");
  EXPECT_EQ(sink_.Take(), "");
  EXPECT_EQ(observer_->dropped(), 1u);
}

// A trigger on a long array: a write yields no more points than the series limit allows.
TEST_F(TsdbObserverTest, ALongArrayYieldsAtMostTheSeriesLimit) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})");
  std::string data = R"({"data":{"a":[0)";
  for (int i = 1; i < 30000; ++i) data += ",1";
  Write("state", data + "]}}");
  sink_.Take();
  EXPECT_EQ(sink_.last_.size(), TsdbObserver::kDefaultMaxSeriesPerTwin);
  EXPECT_EQ(sink_.last_.back().point.json_path, "a.999");
  EXPECT_EQ(observer_->dropped(), 29000u);
}

// The walk stops naming points once the limit is reached and the write met every series its
// document fed; what it pushes and counts is what a full walk would.
TEST_F(TsdbObserverTest, AtTheSeriesLimitTheSameFirstPointsArePushedAndTheRestCounted) {
  engine_->RemoveObserver(observer_.get());  // replaced by one with other settings
  observer_ = std::make_unique<TsdbObserver>(sink_, 3);
  engine_->AddObserver(observer_.get());
  Write("_config",
        R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"},"other":{"_tsdb_trigger":"on-change"}}}})");
  Write("state", R"({"data":{"b":[1,2,3]}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/b.0=1 dev1/state/b.1=2 dev1/state/b.2=3");
  // Series fed by leaves written after others: the walk goes on past the new ones.
  Write("state", R"({"data":{"a":[1,2],"c":{"d":5},"b":[4,5,6,7]}})");
  EXPECT_EQ(sink_.Take(), "dev1/state/b.0=4 dev1/state/b.1=5 dev1/state/b.2=6");
  EXPECT_EQ(observer_->dropped(), 4u);  // a.0, a.1, c.d, b.3
  // Another document, with the twin at its limit: nothing to meet, every point counted.
  Write("other", R"({"data":{"x":[1,2,3],"y":true}})");
  EXPECT_EQ(sink_.Take(), "");
  EXPECT_EQ(observer_->dropped(), 8u);
  // On-change: only changed leaves are counted.
  Write("other", R"({"data":{"x":[1,9,3],"y":true}})");
  EXPECT_EQ(observer_->dropped(), 9u);
}

TEST_F(TsdbObserverTest, OnChangeOverALongArrayPushesTheChangedFedSeries) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-change"}}}})");
  auto array = [](int changed) {
    std::string data = R"({"data":{"a":[0)";
    for (int i = 1; i < 32000; ++i) data += changed > 0 && (i == changed || i == changed + 20000) ? ",1" : ",0";
    return data + "]}}";
  };
  Write("state", array(-1));
  sink_.Take();
  EXPECT_EQ(sink_.last_.size(), TsdbObserver::kDefaultMaxSeriesPerTwin);
  EXPECT_EQ(observer_->dropped(), 31000u);
  Write("state", array(500));  // a.500 and a.20500 change; a.20500 is not fed
  EXPECT_EQ(sink_.Take(), "dev1/state/a.500=1");
  EXPECT_EQ(observer_->dropped(), 31001u);
}

TEST_F(TsdbObserverTest, ConfigurationOfOneTwinDoesNotApplyToAnother) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})", false, "dev1");
  Write("state", R"({"data":{"a":1}})", false, "dev2");
  EXPECT_EQ(sink_.Take(), "");
  Write("state", R"({"data":{"a":1}})", false, "dev1");
  EXPECT_EQ(sink_.Take(), "dev1/state/a=1");
}

}  // namespace
}  // namespace twins
