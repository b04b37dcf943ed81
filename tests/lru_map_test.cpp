#include "common/lru_map.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twins {
namespace {

TEST(LruMapTest, EvictsTheLeastRecentlyUsedPastTheCapacity) {
  LruMap<int> map(10);
  map.Insert("a", 1, 4);
  map.Insert("b", 2, 4);
  ASSERT_NE(map.Find("a"), nullptr);  // a is now more recent than b
  map.Insert("c", 3, 4);              // 12 > 10: b goes
  EXPECT_EQ(map.Find("b"), nullptr);
  EXPECT_EQ(*map.Find("a"), 1);
  EXPECT_EQ(*map.Find("c"), 3);
  EXPECT_EQ(map.size(), 2u);
  EXPECT_EQ(map.charge(), 8u);
}

TEST(LruMapTest, InsertReplacesAndChargeGrowthEvictsOthersNeverTheEntryItself) {
  LruMap<std::string> map(10);
  map.Insert("a", "x", 3);
  map.Insert("b", "y", 3);
  map.Insert("a", "z", 5);
  EXPECT_EQ(*map.Find("a"), "z");
  EXPECT_EQ(map.charge(), 8u);
  map.Charge("a", 9);  // over: b goes, a stays
  EXPECT_EQ(map.Find("b"), nullptr);
  map.Charge("a", 50);  // alone and larger than the capacity: kept until the next insertion
  EXPECT_EQ(*map.Find("a"), "z");
  map.Insert("c", "w", 1);
  EXPECT_EQ(map.Find("a"), nullptr);
  EXPECT_EQ(map.size(), 1u);
  EXPECT_EQ(map.charge(), 1u);
}

}  // namespace
}  // namespace twins
