// What keeps devices from filling the disk: the twin limit (engine), the free-space reserve
// and the recovery after a failed write (RocksDB store), over real RocksDB; the disk tests
// fill a real tmpfs (root only, skipped otherwise).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "tests/support/small_disk.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;

WriteRequest Body(const std::string& json) {
  auto request = ParseWriteRequest(json, Limits());
  EXPECT_TRUE(request.ok()) << request.status().message();
  return request.ok() ? std::move(request).value() : WriteRequest{};
}

class TwinLimitTest : public testing::Test {
 protected:
  void Open(size_t max_twins) {
    engine_.reset();
    auto store = OpenRocksDbStore(dir_.sub("db"));
    ASSERT_TRUE(store.ok()) << store.status().message();
    Limits limits;
    limits.max_twins = max_twins;
    engine_ = std::make_unique<Engine>(std::move(store).value(), limits);
    ASSERT_TRUE(engine_->start_status().ok()) << engine_->start_status().message();
  }
  Status Put(const std::string& twin, const std::string& doc = "d") {
    auto written = engine_->Put(twin, doc, Body(doc == "_config" ? R"({"data":{}})" : R"({"data":{"a":1}})"));
    return written.ok() ? Status::Ok() : written.status();
  }

  test::TempDir dir_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(TwinLimitTest, ANewTwinBeyondTheLimitIsRefusedWithAQuotaError) {
  Open(2);
  ASSERT_TRUE(Put("dev1").ok());
  ASSERT_TRUE(Put("dev2", "_config").ok());  // a twin of only _config counts: it takes disk too
  Status refused = Put("dev3");
  EXPECT_EQ(refused.code(), Code::kQuotaExceeded);
  EXPECT_EQ(refused.field(), "twins");
  EXPECT_EQ(refused.message(), "quota exceeded: twins is limited to 2");
  EXPECT_EQ(refused.quota(), 2u);
  EXPECT_EQ(refused.current(), 2u);
  auto patched = engine_->Patch("dev3", "d", Body(R"({"data":{}})"));
  EXPECT_EQ(patched.status().code(), Code::kQuotaExceeded);
  // Existing twins still grow and are written.
  EXPECT_TRUE(Put("dev1", "other").ok());
  EXPECT_TRUE(Put("dev2", "d").ok());
  EXPECT_EQ(engine_->twins(), 2u);
}

TEST_F(TwinLimitTest, ARefusedTwinWritesNothing) {
  Open(1);
  ASSERT_TRUE(Put("dev1").ok());
  ASSERT_FALSE(Put("dev2").ok());
  EXPECT_EQ(engine_->Get("dev2", "d").status().code(), Code::kNotFound);
  auto names = engine_->List("dev2");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  EXPECT_EQ(engine_->twins(), 1u);
}

TEST_F(TwinLimitTest, DeletingATwinsLastDocumentOrAllOfThemFreesItsPlace) {
  Open(2);
  ASSERT_TRUE(Put("dev1", "a").ok());
  ASSERT_TRUE(Put("dev1", "b").ok());
  ASSERT_TRUE(Put("dev2").ok());
  ASSERT_TRUE(engine_->Delete("dev1", "a", 0).ok());
  EXPECT_EQ(Put("dev3").code(), Code::kQuotaExceeded);  // dev1 still has b
  ASSERT_TRUE(engine_->Delete("dev1", "b", 0).ok());
  EXPECT_TRUE(Put("dev3").ok());
  EXPECT_EQ(Put("dev4").code(), Code::kQuotaExceeded);
  ASSERT_TRUE(engine_->DeleteAll("dev2").ok());
  ASSERT_TRUE(engine_->DeleteAll("dev2").ok());  // twice: an empty twin frees nothing more
  EXPECT_TRUE(Put("dev4").ok());
  EXPECT_EQ(Put("dev5").code(), Code::kQuotaExceeded);
  EXPECT_EQ(engine_->twins(), 2u);
}

TEST_F(TwinLimitTest, TheCountIsTakenAgainAtOpen) {
  Open(0);
  ASSERT_TRUE(Put("dev1").ok());
  ASSERT_TRUE(Put("dev2", "a").ok());
  ASSERT_TRUE(Put("dev2", "b").ok());
  ASSERT_TRUE(Put(std::string("dev2") + '\x01').ok());  // sorts right after dev2's documents
  EXPECT_EQ(engine_->twins(), 0u);                      // not counted without a limit
  Open(3);
  EXPECT_EQ(engine_->twins(), 3u);
  EXPECT_EQ(Put("dev4").code(), Code::kQuotaExceeded);
  Open(4);
  EXPECT_TRUE(Put("dev4").ok());
}

// REST threads and the broker thread create twins at once: exactly max_twins succeed.
TEST_F(TwinLimitTest, ConcurrentCreatorsNeverPassTheLimit) {
  constexpr size_t kLimit = 50;
  Open(kLimit);
  std::atomic<int> created{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      // Thread 0 writes like the broker (group commit), the others like REST.
      const Durability durability = t == 0 ? Durability::kAtSync : Durability::kBeforeReturn;
      for (int i = 0; i < 40; ++i) {
        auto written = engine_->Put("t" + std::to_string(t) + "-" + std::to_string(i), "d", Body(R"({"data":{}})"),
                                    durability);
        if (written.ok()) ++created;
        if (!written.ok() && written.status().code() == Code::kQuotaExceeded) ++refused;
        if (t == 0) {
          ASSERT_TRUE(engine_->Sync().ok());
        }
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(created.load(), static_cast<int>(kLimit));
  EXPECT_EQ(refused.load(), 160 - static_cast<int>(kLimit));
  EXPECT_EQ(engine_->twins(), kLimit);
  Open(kLimit);
  EXPECT_EQ(engine_->twins(), kLimit);
}

// The free-space reserve: writes that add data are refused, reads and deletions are not.
class ReserveTest : public testing::Test {
 protected:
  std::unique_ptr<Engine> Open(uint64_t min_free_bytes, const std::string& path) {
    RocksDbOptions options;
    options.path = path;
    options.min_free_bytes = min_free_bytes;
    options.cache_bytes = 1 << 20;
    auto store = OpenRocksDbStore(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::make_unique<Engine>(std::move(store).value(), Limits()) : nullptr;
  }
  test::TempDir dir_;
};

TEST_F(ReserveTest, BelowTheReserveWritesAreRefusedReadsAndDeletionsGoOn) {
  auto engine = Open(0, dir_.sub("db"));
  ASSERT_TRUE(engine->Put("dev1", "a", Body(R"({"data":{"a":1}})")).ok());
  ASSERT_TRUE(engine->Put("dev1", "b", Body(R"({"data":{"b":1}})")).ok());
  engine.reset();
  engine = Open(uint64_t{1} << 60, dir_.sub("db"));  // more than any disk has
  auto refused = engine->Patch("dev1", "a", Body(R"({"data":{"a":2}})"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInsufficientStorage);
  EXPECT_EQ(refused.status().message(),
            "not enough free disk space for the database: writes that add data are refused while less than "
            "1099511627776 MiB are free");
  EXPECT_EQ(refused.status().min_free_mb(), uint64_t{1} << 40);
  EXPECT_LT(refused.status().free_mb(), uint64_t{1} << 40);
  EXPECT_EQ(engine->Put("dev2", "new", Body(R"({"data":{}})")).status().code(), Code::kInsufficientStorage);
  EXPECT_EQ(engine->Get("dev1", "a")->version, 1u);
  EXPECT_TRUE(engine->Delete("dev1", "a", 0).ok());
  EXPECT_TRUE(engine->DeleteAll("dev1").ok());
  auto names = engine->List("dev1");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
}

// Bad input first: a refused write for bad data says what is wrong with it, not the disk.
TEST_F(ReserveTest, BadInputIsNamedBeforeTheDisk) {
  auto engine = Open(uint64_t{1} << 60, dir_.sub("db"));
  EXPECT_EQ(engine->Put("bad/twin", "d", Body(R"({"data":{}})")).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(engine->Put("dev1", "_secret", Body(R"({"data":{}})")).status().code(), Code::kInvalidArgument);
}

TEST_F(ReserveTest, WritesResumeByThemselvesOnceTheReserveIsBack) {
  test::SmallDisk disk(dir_.sub("disk"), 8);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  auto engine = Open(3 << 20, dir_.sub("disk") + "/db");
  ASSERT_TRUE(engine->Put("dev1", "d", Body(R"({"data":{"n":1}})")).ok());
  disk.Fill(2 << 20);  // 2 MiB left, under the 3 MiB reserve
  auto deadline = Clock::now() + std::chrono::seconds(2);
  Result<Document> written = Status::Internal("not tried");
  while (Clock::now() < deadline && (written = engine->Patch("dev1", "d", Body(R"({"data":{"n":2}})"))).ok()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(written.status().code(), Code::kInsufficientStorage) << written.status().message();
  EXPECT_EQ(written.status().min_free_mb(), 3u);
  EXPECT_EQ(written.status().free_mb(), 2u);
  EXPECT_TRUE(engine->Get("dev1", "d").ok());

  disk.Free();
  const auto freed = Clock::now();
  while ((written = engine->Patch("dev1", "d", Body(R"({"data":{"n":3}})"))).status().code() ==
             Code::kInsufficientStorage &&
         Clock::now() - freed < std::chrono::seconds(2)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(written.ok()) << written.status().message();
}

// A disk that really fills: the write RocksDB cannot take is refused, reads go on, and once
// space is freed writes are accepted again with no reopening.
TEST_F(ReserveTest, AfterAFullDiskWritesResumeOnceSpaceIsFreed) {
  test::SmallDisk disk(dir_.sub("disk"), 2);
  if (!disk.mounted()) GTEST_SKIP() << "needs root to mount a tmpfs";
  const std::string path = dir_.sub("disk") + "/db";
  auto engine = Open(0, path);
  ASSERT_TRUE(engine->Put("dev1", "kept", Body(R"({"data":{"a":1}})")).ok());
  disk.Fill();
  const std::string filler(16 * 1024, 'x');
  Result<Document> written = Status::Internal("not tried");
  int writes = 0;
  while (writes < 200 && (written = engine->Put("dev1", "big", Body(R"({"data":{"s":")" + filler + R"("}})"))).ok()) {
    ++writes;
  }
  ASSERT_FALSE(written.ok()) << "the disk never filled";
  EXPECT_EQ(written.status().code(), Code::kInsufficientStorage) << written.status().message();
  EXPECT_EQ(written.status().message(), "the database's disk is full: writes are refused until space is freed");

  auto refused = engine->Patch("dev1", "kept", Body(R"({"data":{"a":2}})"));
  EXPECT_EQ(refused.status().code(), Code::kInsufficientStorage);
  EXPECT_EQ(engine->Get("dev1", "kept")->version, 1u);
  EXPECT_EQ(engine->Delete("dev1", "kept", 0).status().code(), Code::kInsufficientStorage);  // RocksDB is stopped

  disk.Free();
  const auto freed = Clock::now();
  while ((written = engine->Patch("dev1", "kept", Body(R"({"data":{"a":3}})"))).status().code() ==
             Code::kInsufficientStorage &&
         Clock::now() - freed < std::chrono::seconds(3)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(written.ok()) << written.status().message();
  EXPECT_EQ(written->data, R"({"a":3})");
  ASSERT_TRUE(engine->Sync().ok());
  engine.reset();
  engine = Open(0, path);
  EXPECT_EQ(engine->Get("dev1", "kept")->data, R"({"a":3})");
}

}  // namespace
}  // namespace twins
