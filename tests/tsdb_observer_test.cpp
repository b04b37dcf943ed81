// TsdbObserver on a real engine (RocksDB in a temporary folder), with a sink that records.
#include "observer.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>

#include "support/temp_dir.hpp"

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
    observer_ = std::make_unique<TsdbObserver>(*engine_, sink_);
    engine_->SetObserver(observer_.get());
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
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
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

TEST_F(TsdbObserverTest, ConfigurationOfOneTwinDoesNotApplyToAnother) {
  Write("_config", R"({"data":{"documents":{"state":{"_tsdb_trigger":"on-update"}}}})", false, "dev1");
  Write("state", R"({"data":{"a":1}})", false, "dev2");
  EXPECT_EQ(sink_.Take(), "");
  Write("state", R"({"data":{"a":1}})", false, "dev1");
  EXPECT_EQ(sink_.Take(), "dev1/state/a=1");
}

}  // namespace
}  // namespace twins
