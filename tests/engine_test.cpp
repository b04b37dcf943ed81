#include "engine/engine.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/names.hpp"
#include "tests/support/store_backends.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

class EngineTest : public testing::TestWithParam<test::Backend> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(Limits limits = Limits()) {
    batches_.reset();
    engine_.reset();
    auto store = store_.Open();
    ASSERT_TRUE(store.ok()) << store.status().message();
    engine_ = std::make_unique<Engine>(std::move(store).value(), limits);
    batches_ = store_.Attach(*engine_);
  }

  // Adds `observer` while no batch thread runs (observers are added before the engine is
  // shared between threads); the guard stops the batch thread before the observer goes (it
  // hears of a batch's durability after the batch's callers returned).
  [[nodiscard]] std::shared_ptr<void> Observe(WriteObserver* observer) {
    batches_.reset();
    engine_->SetBatchRunner(nullptr);
    engine_->AddObserver(observer);
    batches_ = store_.Attach(*engine_);
    return std::shared_ptr<void>(nullptr, [this](void*) {
      batches_.reset();
      engine_->SetBatchRunner(nullptr);
    });
  }

  static WriteRequest Request(const std::string& body) {
    auto request = ParseWriteRequest(body, Limits());
    EXPECT_TRUE(request.ok()) << body << ": " << request.status().message();
    return request.ok() ? std::move(request).value() : WriteRequest{};
  }

  // A body the parser refuses gives its error, as the broker and REST layers answer it.
  Result<Document> Put(const std::string& doc, const std::string& body, const std::string& twin = "dev1") {
    auto request = ParseWriteRequest(body, Limits());
    if (!request.ok()) return request.status();
    return engine_->Put(twin, doc, request.value());
  }
  Result<Document> Patch(const std::string& doc, const std::string& body, const std::string& twin = "dev1") {
    auto request = ParseWriteRequest(body, Limits());
    if (!request.ok()) return request.status();
    return engine_->Patch(twin, doc, request.value());
  }
  std::string Stored(const std::string& doc, const std::string& twin = "dev1") {
    auto got = engine_->Get(twin, doc);
    return got.ok() ? DocumentJson(got.value()) : "<" + got.status().message() + ">";
  }

  test::TempDir dir_;
  test::TestStore store_{GetParam(), dir_.sub("db")};
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<BatchThread> batches_;  // before the engine
};

INSTANTIATE_TEST_SUITE_P(Store, EngineTest,
                         testing::Values(test::Backend::kRocksDb, test::Backend::kPostgres,
                                         test::Backend::kPostgresBatched),
                         test::BackendName);

TEST_P(EngineTest, PutCreatesVersionOneAndGetReturnsIt) {
  auto put = Put("desired", R"({"data":{"temp":21.5,"on":true}})");
  ASSERT_TRUE(put.ok()) << put.status().message();
  EXPECT_EQ(DocumentJson(put.value()), R"({"version":1,"data":{"temp":21.5,"on":true}})");
  EXPECT_EQ(Stored("desired"), R"({"version":1,"data":{"temp":21.5,"on":true}})");
}

TEST_P(EngineTest, GetOfMissingDocumentIsNotFound) {
  auto got = engine_->Get("dev1", "nothing");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kNotFound);
}

TEST_P(EngineTest, PutReplacesAndAddsOneToVersion) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1,"b":2}})").ok());
  auto put = Put("d", R"({"data":{"c":3}})");
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(DocumentJson(put.value()), R"({"version":2,"data":{"c":3}})");
}

TEST_P(EngineTest, PutWithNullInArrayIsRejectedAndChangesNothing) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  auto put = Put("d", R"({"data":{"a":[1,null]}})");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Stored("d"), R"({"version":1,"data":{"a":1}})");
}

TEST_P(EngineTest, PatchMergesKeepsRemovesAndReplaces) {
  ASSERT_TRUE(Put("d", R"({"data":{"keep":1,"drop":2,"arr":[1,2],"obj":{"x":1,"y":2}}})").ok());
  auto patch = Patch("d", R"({"data":{"drop":null,"arr":[3],"obj":{"y":null,"z":3},"new":"s"}})");
  ASSERT_TRUE(patch.ok()) << patch.status().message();
  EXPECT_EQ(DocumentJson(patch.value()), R"({"version":2,"data":{"keep":1,"arr":[3],"obj":{"x":1,"z":3},"new":"s"}})");
}

TEST_P(EngineTest, PatchOfMissingDocumentCreatesIt) {
  auto patch = Patch("d", R"({"data":{"a":{"b":null,"c":1}}})");
  ASSERT_TRUE(patch.ok());
  EXPECT_EQ(DocumentJson(patch.value()), R"({"version":1,"data":{"a":{"c":1}}})");
}

TEST_P(EngineTest, PatchWithNullInArrayIsRejectedAndChangesNothing) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  auto patch = Patch("d", R"({"data":{"a":2,"b":{"c":[[null]]}}})");
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(patch.status().field(), "data");
  EXPECT_EQ(patch.status().message(), "data.b.c[0][0]: arrays cannot contain null");
  EXPECT_EQ(Stored("d"), R"({"version":1,"data":{"a":1}})");
}

TEST_P(EngineTest, AbsentOrZeroVersionSkipsTheCheck) {
  ASSERT_TRUE(Put("d", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("d", R"({"data":{}})").ok());
  EXPECT_EQ(Put("d", R"({"version":0,"data":{"a":1}})")->version, 3u);
  EXPECT_EQ(Patch("d", R"({"version":null,"data":{"a":2}})")->version, 4u);
}

TEST_P(EngineTest, MatchingVersionWrites) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  EXPECT_EQ(Put("d", R"({"version":1,"data":{"a":2}})")->version, 2u);
  EXPECT_EQ(Patch("d", R"({"version":2,"data":{"b":3}})")->version, 3u);
  EXPECT_EQ(Stored("d"), R"({"version":3,"data":{"a":2,"b":3}})");
}

TEST_P(EngineTest, VersionMismatchNamesExpectedAndActualAndWritesNothing) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  ASSERT_TRUE(Put("d", R"({"data":{"a":2}})").ok());
  for (bool patch : {false, true}) {
    const std::string body = R"({"version":1,"data":{"a":3}})";
    auto result = patch ? Patch("d", body) : Put("d", body);
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), Code::kVersionMismatch);
    EXPECT_EQ(result.status().expected(), 1u);
    EXPECT_EQ(result.status().actual(), 2u);
  }
  EXPECT_EQ(Stored("d"), R"({"version":2,"data":{"a":2}})");
}

TEST_P(EngineTest, NonZeroVersionOnMissingDocumentIsAMismatch) {
  auto put = Put("d", R"({"version":1,"data":{}})");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kVersionMismatch);
  EXPECT_EQ(put.status().actual(), 0u);
  EXPECT_EQ(engine_->Get("dev1", "d").status().code(), Code::kNotFound);
}

TEST_P(EngineTest, DeleteReturnsLastVersionAndRecreateStartsAtOne) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  ASSERT_TRUE(Put("d", R"({"data":{"a":2}})").ok());
  auto deleted = engine_->Delete("dev1", "d", 0);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(DocumentJson(deleted.value()), R"({"version":2,"data":{"a":2}})");
  EXPECT_EQ(engine_->Get("dev1", "d").status().code(), Code::kNotFound);
  EXPECT_EQ(Put("d", R"({"data":{"b":1}})")->version, 1u);
}

TEST_P(EngineTest, DeleteOfMissingDocumentIsNotFound) {
  EXPECT_EQ(engine_->Delete("dev1", "d", 0).status().code(), Code::kNotFound);
}

TEST_P(EngineTest, DeleteWithWrongVersionKeepsTheDocument) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  auto deleted = engine_->Delete("dev1", "d", 5);
  ASSERT_FALSE(deleted.ok());
  EXPECT_EQ(deleted.status().code(), Code::kVersionMismatch);
  EXPECT_EQ(deleted.status().expected(), 5u);
  EXPECT_EQ(deleted.status().actual(), 1u);
  EXPECT_TRUE(engine_->Delete("dev1", "d", 1).ok());
}

TEST_P(EngineTest, ListNamesTheTwinsDocumentsOnly) {
  ASSERT_TRUE(Put("b", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("a", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("other", R"({"data":{}})", "dev2").ok());
  auto names = engine_->List("dev1");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(engine_->List("nobody")->empty());
}

TEST_P(EngineTest, ListWithBadTwinIdIsRejected) { EXPECT_EQ(engine_->List("a/b").status().field(), "twin_id"); }

TEST_P(EngineTest, DeleteAllRemovesEveryDocumentOfOneTwin) {
  ASSERT_TRUE(Put("a", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("_config", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("a", R"({"data":{}})", "dev2").ok());
  ASSERT_TRUE(engine_->DeleteAll("dev1").ok());
  EXPECT_TRUE(engine_->List("dev1")->empty());
  EXPECT_EQ(engine_->List("dev2")->size(), 1u);
  EXPECT_TRUE(engine_->DeleteAll("nobody").ok());
}

TEST_P(EngineTest, DeleteAllWithBadTwinIdIsRejected) { EXPECT_EQ(engine_->DeleteAll("").field(), "twin_id"); }

TEST_P(EngineTest, BadNamesAreRejectedOnEveryOperation) {
  EXPECT_EQ(Put("bad name", R"({"data":{}})").status().field(), "document_name");
  EXPECT_EQ(Patch("_private", R"({"data":{}})").status().field(), "document_name");
  EXPECT_EQ(engine_->Get("a+b", "d").status().field(), "twin_id");
  EXPECT_EQ(engine_->Delete("dev1", "", 0).status().field(), "document_name");
  EXPECT_TRUE(engine_->List("dev1")->empty());
}

TEST_P(EngineTest, ReservedKeysInOrdinaryDocumentsAreRejected) {
  auto put = Put("d", R"({"data":{"a":{"_tags":{}}}})");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().message(), "data.a._tags: keys starting with '_' are reserved");
  EXPECT_FALSE(Patch("d", R"({"data":{"_x":null}})").ok());
  EXPECT_EQ(engine_->Get("dev1", "d").status().code(), Code::kNotFound);
}

TEST_P(EngineTest, ConfigDocumentAcceptsSettingsAndIsExposedParsed) {
  auto put = Put("_config",
                 R"({"data":{"documents":{"current":{"_tsdb_trigger":"on-change","t":{"_tags":{"u":"C"}}}}}})");
  ASSERT_TRUE(put.ok()) << put.status().message();
  auto config = engine_->Config("dev1");
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->documents.at("current").trigger, TsdbTrigger::kOnChange);
  EXPECT_EQ(config->documents.at("current").children.at("t").tags->at("u"), "C");
}

TEST_P(EngineTest, ConfigPatchWithNullRemovesASetting) {
  ASSERT_TRUE(
      Put("_config", R"({"data":{"documents":{"current":{"_tsdb_trigger":"on-change","_tags":{"a":"b"}}}}})").ok());
  auto patch = Patch("_config", R"({"data":{"documents":{"current":{"_tsdb_trigger":null}}}})");
  ASSERT_TRUE(patch.ok()) << patch.status().message();
  EXPECT_EQ(DocumentJson(patch.value()), R"({"version":2,"data":{"documents":{"current":{"_tags":{"a":"b"}}}}})");
  EXPECT_FALSE(engine_->Config("dev1")->documents.at("current").trigger.has_value());
}

TEST_P(EngineTest, InvalidConfigIsRejectedAndChangesNothing) {
  ASSERT_TRUE(Put("_config", R"({"data":{"documents":{}}})").ok());
  auto bad_put = Put("_config", R"({"data":{"documents":{"d":{"_tsdb_trigger":"sometimes"}}}})");
  ASSERT_FALSE(bad_put.ok());
  EXPECT_EQ(bad_put.status().message(), "data.documents.d._tsdb_trigger: must be \"on-update\" or \"on-change\"");
  EXPECT_FALSE(Patch("_config", R"({"data":{"documents":{"d":{"_colour":"red"}}}})").ok());
  EXPECT_FALSE(Patch("_config", R"({"data":{"settings":{}}})").ok());
  EXPECT_EQ(Stored("_config"), R"({"version":1,"data":{"documents":{}}})");
}

TEST_P(EngineTest, MissingConfigIsAnEmptyConfiguration) {
  auto config = engine_->Config("dev1");
  ASSERT_TRUE(config.ok());
  EXPECT_TRUE(config->documents.empty());
}

TEST_P(EngineTest, DocumentSizeLimitAppliesToTheMergedResult) {
  Limits limits;
  limits.max_document_bytes = 64;
  Reopen(limits);
  const std::string half(20, 'x');
  ASSERT_TRUE(engine_->Patch("dev1", "d", Request(R"({"data":{"a":")" + half + R"("}})")).ok());
  auto grow = engine_->Patch("dev1", "d", Request(R"({"data":{"b":")" + half + half + R"("}})"));
  ASSERT_FALSE(grow.ok());
  EXPECT_EQ(grow.status().code(), Code::kInvalidArgument);
  EXPECT_NE(grow.status().message().find("larger than the limit of 64"), std::string::npos);
  EXPECT_EQ(engine_->Get("dev1", "d")->version, 1u);
}

TEST_P(EngineTest, DocumentsPerTwinQuotaCountsOrdinaryDocuments) {
  Limits limits;
  limits.max_documents = 2;
  Reopen(limits);
  ASSERT_TRUE(Put("a", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("b", R"({"data":{}})").ok());
  ASSERT_TRUE(Put("_config", R"({"data":{}})").ok());
  auto third = Put("c", R"({"data":{}})");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), Code::kQuotaExceeded);
  EXPECT_EQ(third.status().field(), "twin_documents");
  EXPECT_EQ(third.status().message(), "quota exceeded: twin_documents is limited to 2");
  EXPECT_EQ(third.status().quota(), 2u);
  EXPECT_EQ(third.status().current(), 2u);
  EXPECT_FALSE(Patch("c", R"({"data":{}})").ok());
  EXPECT_TRUE(Put("a", R"({"data":{"still":"writable"}})").ok());
  EXPECT_TRUE(Put("c", R"({"data":{}})", "dev2").ok());
}

class RecordingObserver : public WriteObserver {
 public:
  void OnWrite(const WriteEvent& event) noexcept override {
    if (event.after == nullptr) return;  // a deletion
    events.push_back(std::string(event.twin) + "/" + std::string(event.document) + " v" +
                     std::to_string(event.after->version) + " before=" + (event.before ? event.before->data : "none") +
                     " request=" + std::string(event.request) + " after=" + event.after->data);
  }
  std::vector<std::string> events;
};

TEST_P(EngineTest, ObserverSeesEverySuccessfulWriteWithBeforeAndAfter) {
  RecordingObserver observer;
  auto observing = Observe(&observer);
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"b":2}})").ok());
  EXPECT_EQ(observer.events,
            (std::vector<std::string>{R"(dev1/d v1 before=none request={"a":1} after={"a":1})",
                                      R"(dev1/d v2 before={"a":1} request={"b":2} after={"a":1,"b":2})"}));
}

// Records the configuration each write of an ordinary document was handed.
class ConfigObserver : public WriteObserver {
 public:
  void OnWrite(const WriteEvent& event) noexcept override {
    if (event.after == nullptr) return;  // a deletion
    std::lock_guard<std::mutex> lock(mutex);
    if (event.document == kConfigDocument) {
      EXPECT_EQ(event.config, nullptr);
      return;
    }
    configs.push_back(event.config);
    triggers.push_back(event.config == nullptr                                              ? "<error>"
                       : event.config->documents.count("d") == 0                            ? "none"
                       : !event.config->documents.at("d").trigger                           ? "unset"
                       : *event.config->documents.at("d").trigger == TsdbTrigger::kOnUpdate ? "on-update"
                                                                                            : "on-change");
  }
  std::mutex mutex;
  std::vector<const TwinConfig*> configs;
  std::vector<std::string> triggers;
};

TEST_P(EngineTest, ConfigIsParsedWhenWrittenAndHandedToEveryWriteUntilItChanges) {
  ConfigObserver observer;
  auto observing = Observe(&observer);
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  ASSERT_TRUE(Put("_config", R"({"data":{"documents":{"d":{"_tsdb_trigger":"on-update"}}}})").ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"a":2}})").ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"a":3}})").ok());
  ASSERT_TRUE(Patch("_config", R"({"data":{"documents":{"d":{"_tsdb_trigger":"on-change"}}}})").ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"a":4}})").ok());
  ASSERT_TRUE(engine_->Delete("dev1", "_config", 0).ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"a":5}})").ok());
  ASSERT_TRUE(Put("_config", R"({"data":{"documents":{"d":{}}}})").ok());
  ASSERT_TRUE(engine_->DeleteAll("dev1").ok());
  ASSERT_TRUE(Patch("d", R"({"data":{"a":6}})").ok());
  EXPECT_EQ(observer.triggers,
            (std::vector<std::string>{"none", "on-update", "on-update", "on-change", "none", "none"}));
  EXPECT_EQ(observer.configs[1], observer.configs[2]);  // the same parsed form: no parse per write
  EXPECT_NE(observer.configs[2], observer.configs[3]);
}

TEST_P(EngineTest, ConfigWrittenBeforeTheEngineStartedIsReadOnceAndKept) {
  ASSERT_TRUE(Put("_config", R"({"data":{"documents":{"d":{"_tsdb_trigger":"on-change"}}}})").ok());
  Reopen();
  ConfigObserver observer;
  auto observing = Observe(&observer);
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  ASSERT_TRUE(Put("d", R"({"data":{"a":2}})").ok());
  EXPECT_EQ(observer.triggers, (std::vector<std::string>{"on-change", "on-change"}));
  EXPECT_EQ(observer.configs[0], observer.configs[1]);
  EXPECT_EQ(engine_->Config("dev1")->documents.at("d").trigger, TsdbTrigger::kOnChange);
}

TEST_P(EngineTest, ConfigLargerThanItsLimitIsRefusedNamingTheLimit) {
  Limits limits;
  limits.max_config_bytes = 60;
  Reopen(limits);
  const std::string fits = R"({"documents":{"d":{"_tsdb_trigger":"on-update"}}})";  // 49 bytes
  ASSERT_TRUE(Put("_config", "{\"data\":" + fits + "}").ok());
  auto grown = Patch("_config", R"({"data":{"documents":{"e":{"_tsdb_trigger":"on-update"}}}})");
  ASSERT_FALSE(grown.ok());
  EXPECT_EQ(grown.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(grown.status().field(), "data");
  EXPECT_EQ(grown.status().message(), "_config of 83 bytes is larger than the limit of 60 (max_config_bytes)");
  EXPECT_EQ(Stored("_config"), "{\"version\":1,\"data\":" + fits + "}");
  // Ordinary documents keep their own, larger limit.
  EXPECT_TRUE(Put("d", R"({"data":{"documents":{"e":{"x":"on-update"}},"more":"0123456789012345"}})").ok());
}

// REST threads and the broker thread write one twin's _config and documents at once: every
// write is handed the _config in force when it was made, and the last one wins.
TEST_P(EngineTest, ConcurrentConfigAndDocumentWritersSeeTheConfigInForce) {
  ConfigObserver observer;
  auto observing = Observe(&observer);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        if (t == 0) {
          const char* trigger = i % 2 ? "on-update" : "on-change";
          EXPECT_TRUE(
              Put("_config", std::string(R"({"data":{"documents":{"d":{"_tsdb_trigger":")") + trigger + R"("}}}})")
                  .ok());
        } else {
          EXPECT_TRUE(Patch("d", R"({"data":{"n":)" + std::to_string(i) + "}}").ok());
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  ASSERT_TRUE(Patch("d", R"({"data":{"n":-1}})").ok());
  std::lock_guard<std::mutex> lock(observer.mutex);
  EXPECT_EQ(observer.triggers.back(), "on-update");  // the last _config written (i = 199)
  for (const std::string& trigger : observer.triggers) EXPECT_NE(trigger, "<error>");
}

TEST_P(EngineTest, ObserverDoesNotSeeRejectedWrites) {
  RecordingObserver observer;
  auto observing = Observe(&observer);
  EXPECT_FALSE(Put("d", R"({"version":3,"data":{"a":1}})").ok());
  EXPECT_FALSE(Patch("d", R"({"data":{"a":[null]}})").ok());
  EXPECT_TRUE(observer.events.empty());
}

TEST(ParseWriteRequestTest, ReadsVersionAndData) {
  auto request = ParseWriteRequest(R"({"version":3,"data":{"a":1},"twin_id":"ignored"})", Limits());
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->expected.version, 3u);
  EXPECT_EQ(request->data, R"({"a":1})");
}

TEST(ParseWriteRequestTest, BadBodiesNameTheField) {
  struct Case {
    std::string body;
    const char* field;
  } cases[] = {
      {"", "data"},
      {"not json", "data"},
      {"[1]", "data"},
      {R"({"version":1})", "data"},
      {R"({"data":[1]})", "data"},
      {R"({"data":"x"})", "data"},
      {R"({"version":-1,"data":{}})", "version"},
      {R"({"version":1.5,"data":{}})", "version"},
      {R"({"version":"1","data":{}})", "version"},
      {R"({"version":1e300,"data":{}})", "version"},
      {R"({"data":{}} trailing)", "data"},
  };
  for (const Case& c : cases) {
    auto request = ParseWriteRequest(c.body, Limits());
    ASSERT_FALSE(request.ok()) << c.body;
    EXPECT_EQ(request.status().code(), Code::kInvalidArgument) << c.body;
    EXPECT_EQ(request.status().field(), c.field) << c.body;
  }
}

TEST(ParseWriteRequestTest, VersionsUpTo2To53AreTakenExactly) {
  const std::pair<const char*, uint64_t> cases[] = {
      {"9007199254740992", 9007199254740992u},
      {"9007199254740991", 9007199254740991u},
      {"9.007199254740992e15", 9007199254740992u},
      {"7.0", 7},
      {"70e-1", 7},
      {"0.07e2", 7},
      {"-0", 0},
      {"0e5", 0},
      {"12E+2", 1200},
  };
  for (const auto& [text, version] : cases) {
    for (bool data_required : {true, false}) {  // put and patch bodies, delete bodies
      const std::string body = std::string(R"({"version":)") + text + (data_required ? R"(,"data":{}})" : "}");
      auto request = ParseWriteRequest(body, Limits(), data_required ? BodyOf::kPutOrPatch : BodyOf::kDelete);
      ASSERT_TRUE(request.ok()) << body << ": " << request.status().message();
      EXPECT_EQ(request->expected.version, version) << body;
    }
  }
}

TEST(ParseWriteRequestTest, VersionsAbove2To53AreRefusedNotRounded) {
  // 9007199254740993 reads as the double 2^53: the old check let it through as 2^53.
  for (const char* text : {"9007199254740993", "9007199254740993.0", "9007199254740992.5", "90071992547409921e-1",
                           "9007199254740990.5", "18446744073709551617", "1e16", "1e300", "0.5", "-1", "-0.0001"}) {
    for (bool data_required : {true, false}) {
      const std::string body = std::string(R"({"version":)") + text + (data_required ? R"(,"data":{}})" : "}");
      auto request = ParseWriteRequest(body, Limits(), data_required ? BodyOf::kPutOrPatch : BodyOf::kDelete);
      ASSERT_FALSE(request.ok()) << body;
      EXPECT_EQ(request.status().field(), "version") << body;
      EXPECT_EQ(request.status().message(), "version must be an integer from 0 to 2^53") << body;
    }
  }
}

TEST_P(EngineTest, AVersionAbove2To53IsRefusedNotReportedAsAMismatch) {
  ASSERT_TRUE(Put("d", R"({"data":{"a":1}})").ok());
  auto put = Put("d", R"({"version":9007199254740993,"data":{"a":2}})");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(put.status().message(), "version must be an integer from 0 to 2^53");
  auto patch = Patch("d", R"({"version":9007199254740993,"data":{"a":2}})");
  ASSERT_FALSE(patch.ok());
  EXPECT_EQ(patch.status().code(), Code::kInvalidArgument);
  // 2^53 itself is a version: a mismatch here, reported as sent.
  auto exact = Patch("d", R"({"version":9007199254740992,"data":{"a":2}})");
  ASSERT_FALSE(exact.ok());
  EXPECT_EQ(exact.status().code(), Code::kVersionMismatch);
  EXPECT_EQ(exact.status().expected(), 9007199254740992u);
  EXPECT_EQ(Stored("d"), R"({"version":1,"data":{"a":1}})");
}

TEST(ParseWriteRequestTest, DepthLimitCountsDataItself) {
  Limits limits;
  limits.max_depth = 2;
  EXPECT_TRUE(ParseWriteRequest(R"({"data":{"a":{"b":1}}})", limits).ok());
  auto deep = ParseWriteRequest(R"({"data":{"a":{"b":[1]}}})", limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message(), "data nests deeper than 2 levels");
}

TEST(ParseWriteRequestTest, OversizeBodyIsRejectedUnparsed) {
  Limits limits;
  limits.max_document_bytes = 16;
  std::string body = R"({"data":{"a":")" + std::string(limits.max_request_bytes(), 'x') + R"("}})";
  auto request = ParseWriteRequest(body, limits);
  ASSERT_FALSE(request.ok());
  EXPECT_NE(request.status().message().find("larger than the limit"), std::string::npos);
}

TEST(ParseWriteRequestTest, DeleteBodyMayBeEmptyOrCarryAVersion) {
  EXPECT_EQ(ParseWriteRequest("", Limits(), BodyOf::kDelete)->expected.version, 0u);
  EXPECT_EQ(ParseWriteRequest(R"({"version":4})", Limits(), BodyOf::kDelete)->expected.version, 4u);
  EXPECT_FALSE(ParseWriteRequest(R"({"version":"x"})", Limits(), BodyOf::kDelete).ok());
}

// Optimistic locking from many threads: each increments a counter with a versioned
// read-modify-write and retries on mismatch. A lost update would leave the count short.
TEST_P(EngineTest, ConcurrentVersionedWritersLoseNoUpdate) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 150;
  ASSERT_TRUE(Put("counter", R"({"data":{"n":0}})").ok());
  std::atomic<int> conflicts{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements;) {
        auto doc = engine_->Get("dev1", "counter");
        ASSERT_TRUE(doc.ok());
        Json data(cJSON_Parse(doc->data.c_str()));
        int n = cJSON_GetObjectItem(data.get(), "n")->valueint;
        std::string body = R"({"version":)" + std::to_string(doc->version) + R"(,"data":{"n":)" +
                           std::to_string(n + 1) + "}}";
        auto patch = engine_->Patch("dev1", "counter", Request(body));
        if (patch.ok()) {
          ++i;
        } else {
          ASSERT_EQ(patch.status().code(), Code::kVersionMismatch);
          ++conflicts;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const int total = kThreads * kIncrements;
  EXPECT_EQ(Stored("counter"),
            R"({"version":)" + std::to_string(total + 1) + R"(,"data":{"n":)" + std::to_string(total) + "}}");
  std::cout << "version conflicts retried: " << conflicts << "\n";
}

// The broker thread's group-committed writes and REST's durable ones, to one document at
// once, with document creations (which read the twin's document list) among them: every write
// lands once, versions stay contiguous, and what was read before closing is what reopens.
TEST_P(EngineTest, GroupCommittedAndDurableWritersTogetherLoseNothing) {
  constexpr int kBrokerWrites = 300;
  constexpr int kRestThreads = 2;
  constexpr int kRestWrites = 150;
  ASSERT_TRUE(Put("d", R"({"data":{}})").ok());
  std::vector<std::thread> threads;
  threads.emplace_back([&] {
    for (int i = 0; i < kBrokerWrites; ++i) {
      auto patch = engine_->Patch("dev1", "d", Request(R"({"data":{"g)" + std::to_string(i) + R"(":1}})"),
                                  Durability::kAtSync);
      ASSERT_TRUE(patch.ok()) << patch.status().message();
      if (i % 7 == 0) {
        ASSERT_TRUE(engine_->Sync().ok());
      }
    }
    ASSERT_TRUE(engine_->Sync().ok());
  });
  for (int t = 0; t < kRestThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRestWrites; ++i) {
        const std::string key = "r" + std::to_string(t) + "_" + std::to_string(i);
        ASSERT_TRUE(engine_->Patch("dev1", "d", Request(R"({"data":{")" + key + R"(":1}})")).ok());
        if (i % 10 == 0) {
          ASSERT_TRUE(engine_->Put("dev1", "n" + key, Request(R"({"data":{}})")).ok());
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const std::string before = Stored("d");
  EXPECT_NE(before.find(R"("version":)" + std::to_string(1 + kBrokerWrites + kRestThreads * kRestWrites) + ","),
            std::string::npos)
      << before;
  for (int i = 0; i < kBrokerWrites; ++i) EXPECT_NE(before.find("\"g" + std::to_string(i) + "\":1"), std::string::npos);
  EXPECT_EQ(engine_->List("dev1")->size(), 1u + kRestThreads * kRestWrites / 10);
  Reopen();
  EXPECT_EQ(Stored("d"), before);
}

// Unversioned patches of distinct keys from many threads all land: versions stay contiguous.
TEST_P(EngineTest, ConcurrentUnversionedPatchesAllLand) {
  constexpr int kThreads = 4;
  constexpr int kPatches = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPatches; ++i) {
        std::string key = "k" + std::to_string(t) + "_" + std::to_string(i);
        ASSERT_TRUE(engine_->Patch("dev1", "d", Request(R"({"data":{")" + key + R"(":1}})")).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto doc = engine_->Get("dev1", "d");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->version, static_cast<uint64_t>(kThreads * kPatches));
  Json data(cJSON_Parse(doc->data.c_str()));
  EXPECT_EQ(cJSON_GetArraySize(data.get()), kThreads * kPatches);
}

// Writes until killed, acknowledging each write that returned on `ack_fd`: the body of the
// process that AcknowledgedWritesSurviveSigkill kills. A fresh process (not a bare fork of the
// test, whose RocksDB thread pools would not survive the fork).
[[noreturn]] void RunAcknowledgingWriter(const std::string& db, int ack_fd) {
  auto store = OpenRocksDbStore(db);
  if (!store.ok()) _exit(2);
  Engine engine(std::move(store).value(), Limits());
  for (uint32_t i = 1;; ++i) {
    auto request = ParseWriteRequest(R"({"data":{"i":)" + std::to_string(i) + "}}", Limits());
    // Odd writes are group-committed as the broker does: durable at the Sync before the ack.
    const Durability durability = i % 2 == 0 ? Durability::kBeforeReturn : Durability::kAtSync;
    if (!engine.Patch("dev1", "doc" + std::to_string(i % 8), request.value(), durability).ok()) _exit(3);
    if (durability == Durability::kAtSync && !engine.Sync().ok()) _exit(6);
    if (write(ack_fd, &i, sizeof i) != sizeof i) _exit(4);
  }
}

std::string g_self;  // this test binary, for the writer process

// A writer process is killed with SIGKILL mid-stream; every write it acknowledged must be in
// the reopened store.
TEST(EngineDurabilityTest, AcknowledgedWritesSurviveSigkill) {
  test::TempDir dir;
  int acks[2];
  ASSERT_EQ(pipe(acks), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(acks[0]);
    execl(g_self.c_str(), g_self.c_str(), "--acknowledging-writer", dir.sub("db").c_str(),
          std::to_string(acks[1]).c_str(), static_cast<char*>(nullptr));
    _exit(5);
  }
  close(acks[1]);
  uint32_t last = 0;
  while (last < 2000) ASSERT_EQ(read(acks[0], &last, sizeof last), static_cast<ssize_t>(sizeof last));
  kill(child, SIGKILL);
  // Acks already in the pipe are acknowledged writes too.
  uint32_t more;
  while (read(acks[0], &more, sizeof more) == sizeof more) last = more;
  close(acks[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "writer exited by itself with " << WEXITSTATUS(status);

  auto store = OpenRocksDbStore(dir.sub("db"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  Engine engine(std::move(store).value(), Limits());
  for (uint32_t i = last - 7; i <= last; ++i) {
    auto doc = engine.Get("dev1", "doc" + std::to_string(i % 8));
    ASSERT_TRUE(doc.ok()) << "write " << i;
    // Writes up to i with the same i % 8 landed in this document; unacknowledged ones may follow.
    EXPECT_GE(doc->version, i / 8 + (i % 8 == 0 ? 0 : 1)) << "write " << i;
    Json data(cJSON_Parse(doc->data.c_str()));
    EXPECT_GE(static_cast<uint32_t>(cJSON_GetObjectItem(data.get(), "i")->valueint), i) << "write " << i;
  }
}

}  // namespace
}  // namespace twins

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--acknowledging-writer") {
    twins::RunAcknowledgingWriter(argv[2], std::stoi(argv[3]));
  }
  twins::g_self = "/proc/self/exe";
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
