#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include "document_store.hpp"
#include "support/temp_dir.hpp"

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
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_.sub("db"), &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "!schema", "99").ok());
  }
  auto store = OpenRocksDbStore(dir_.sub("db"));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos) << store.status().message();
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

}  // namespace
}  // namespace twins
