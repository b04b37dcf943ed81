#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "store/document_store.hpp"
#include "tests/support/schema1_database.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

class RocksDbStoreTest : public testing::Test {
 protected:
  std::unique_ptr<DocumentStore> Open() {
    auto store = OpenRocksDbStore(dir_.sub("db"));
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  test::TempDir dir_;
};

TEST_F(RocksDbStoreTest, PutGetDeleteRoundTrip) {
  auto store = Open();
  ASSERT_TRUE(store->Put("t", "doc", {7, R"({"a":1})"}).ok());
  auto got = store->Get("t", "doc");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 7u);
  EXPECT_EQ((*got)->data, R"({"a":1})");
  ASSERT_TRUE(store->Delete("t", "doc").ok());
  auto gone = store->Get("t", "doc");
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
}

// A new database logs no warning or error (RocksDB used to report its missing folder).
TEST_F(RocksDbStoreTest, NewDatabaseLogsNothing) {
  RocksDbOptions options;
  options.path = dir_.sub("db");
  std::vector<std::string> lines;
  options.log = [&lines](LogLevel, const std::string& line) { lines.push_back(line); };
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  EXPECT_TRUE(lines.empty()) << lines.front();
}

TEST_F(RocksDbStoreTest, MissingDocumentIsNotAnError) {
  auto store = Open();
  auto got = store->Get("nobody", "doc");
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
}

TEST_F(RocksDbStoreTest, ListAndDeleteAllStayWithinOneTwin) {
  auto store = Open();
  // "t" must not see the documents of "t2" or "s", whose keys sort right beside it.
  for (const char* twin : {"s", "t", "t2"}) {
    for (const char* doc : {"b", "a"}) ASSERT_TRUE(store->Put(twin, doc, {1, "{}"}).ok());
  }
  auto names = store->List("t");
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
  ASSERT_TRUE(store->DeleteAll("t").ok());
  EXPECT_TRUE(store->List("t")->empty());
  EXPECT_EQ(store->List("t2")->size(), 2u);
  EXPECT_EQ(store->List("s")->size(), 2u);
}

// The memtable hashes keys by twin: listing a twin must still find all of its documents and
// none of another's, whether they sit in the memtable, in table files, or in the log replayed
// at the next open.
TEST_F(RocksDbStoreTest, ListsStayWithinOneTwinAcrossMemtableTableFilesAndReopen) {
  RocksDbOptions options;
  options.path = dir_.sub("db");
  options.cache_bytes = 4 << 20;  // 768 KiB write buffers: the loop below flushes several
  const std::string data = "{\"v\":\"" + std::string(4000, 'x') + "\"}";
  auto check = [&](DocumentStore& store) {
    for (int i = 0; i < 120; ++i) {
      const std::string twin = "t" + std::to_string(i);
      auto names = store.List(twin);
      ASSERT_TRUE(names.ok()) << names.status().message();
      EXPECT_EQ(*names, i % 10 == 1 ? std::vector<std::string>{} : std::vector<std::string>({"a", "b", "c"})) << twin;
      auto got = store.Get(twin, "b");
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(got->has_value(), i % 10 != 1) << twin;
    }
  };
  {
    auto store = OpenRocksDbStore(options);
    ASSERT_TRUE(store.ok()) << store.status().message();
    for (const char* doc : {"a", "c", "b"}) {
      for (int i = 0; i < 120; ++i) {
        ASSERT_TRUE((*store)->Put("t" + std::to_string(i), doc, {1, data}).ok());
        ASSERT_TRUE((*store)->Sync().ok());
      }
    }
    // "t1" sorts right before "t10".."t19": deleting it must leave them.
    for (int i = 1; i < 120; i += 10) ASSERT_TRUE((*store)->DeleteAll("t" + std::to_string(i)).ok());
    check(**store);
  }
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  check(**store);
}

TEST_F(RocksDbStoreTest, DataSurvivesCloseAndReopen) {
  {
    auto store = Open();
    ASSERT_TRUE(store->Put("t", "doc", {3, R"({"kept":true})"}).ok());
  }
  auto store = Open();
  auto got = store->Get("t", "doc");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 3u);
  EXPECT_EQ((*got)->data, R"({"kept":true})");
}

TEST_F(RocksDbStoreTest, UnknownSchemaVersionIsRefused) {
  Open().reset();
  {
    // Opened as any RocksDB tool would: with its column families.
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, {}}, {"changes", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.sub("db"), families, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "!schema", "99").ok());
    for (auto* handle : handles) ASSERT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  auto store = OpenRocksDbStore(dir_.sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos) << store.status().message();
}

TEST_F(RocksDbStoreTest, ASchema1DatabaseIsUpgradedInPlace) {
  ASSERT_TRUE(test::MakeSchema1Database(dir_.sub("db"), "t", "doc", 5, R"({"old":1})"));
  auto store = Open();
  auto got = store->Get("t", "doc");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 5u);
  EXPECT_EQ((*got)->data, R"({"old":1})");
  EXPECT_EQ((*got)->modified_ms, 0);  // unknown
}

TEST_F(RocksDbStoreTest, ForeignDatabaseIsRefused) {
  {
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.sub("db"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "someone-else", "x").ok());
  }
  auto store = OpenRocksDbStore(dir_.sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("not a twins database"), std::string::npos);
}

TEST_F(RocksDbStoreTest, UnwritablePathFailsWithMessage) {
  auto store = OpenRocksDbStore("/proc/twins-cannot-live-here");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("cannot open database"), std::string::npos);
}

// Busy documents updated in place never fill the memtable; the log must not grow for that.
TEST_F(RocksDbStoreTest, RewritingFewDocumentsKeepsTheLogBounded) {
  RocksDbOptions options;
  options.path = dir_.sub("db");
  options.cache_bytes = 4 << 20;  // 768 KiB write buffers: a flush at least every 1.5 MiB of log
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  const std::string data = "{\"v\":\"" + std::string(4000, 'x') + "\"}";
  for (int i = 1; i <= 4000; ++i) {  // 16 MB of log
    ASSERT_TRUE((*store)->Put("t", "d" + std::to_string(i % 8), {static_cast<uint64_t>(i), data}).ok());
    if (i % 10 == 0) {
      ASSERT_TRUE((*store)->Sync().ok());
    }
  }
  auto log_bytes = [&] {
    uintmax_t total = 0;
    for (const auto& file : std::filesystem::directory_iterator(options.path)) {
      if (file.path().extension() == ".log") total += file.file_size();
    }
    return total;
  };
  // Flushes run in the background: give the last one a moment to let its log go.
  for (int i = 0; i < 100 && log_bytes() > (4u << 20); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_LE(log_bytes(), 4u << 20);
  auto got = (*store)->Get("t", "d0");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->version, 4000u);
}

}  // namespace
}  // namespace twins
