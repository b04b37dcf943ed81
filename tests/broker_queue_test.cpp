// The broker-thread queue (plugin/broker_queue.hpp): order, capacity, and at most one wake in
// flight however many tasks come before the broker thread drains.
#include "plugin/broker_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace twins {
namespace {

TEST(BrokerQueueTest, ABurstOfPushesWakesOnceUntilTheBrokerThreadDrains) {
  BrokerQueue queue(100);
  int wakes = 0;
  queue.SetWaker([&] { ++wakes; });
  std::vector<int> ran;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(queue.Push([&ran, i] { ran.push_back(i); }));
  EXPECT_EQ(wakes, 1);
  queue.Drain();
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  ASSERT_TRUE(queue.Push([] {}));
  EXPECT_EQ(wakes, 2);
}

TEST(BrokerQueueTest, ATaskQueuedWhileDrainingWakesAgain) {
  BrokerQueue queue(100);
  int wakes = 0;
  queue.SetWaker([&] { ++wakes; });
  bool later_ran = false;
  ASSERT_TRUE(queue.Push([&] { ASSERT_TRUE(queue.Push([&] { later_ran = true; })); }));
  queue.Drain();
  EXPECT_EQ(wakes, 2);  // the task pushed by the drained one is not left for the tick
  EXPECT_FALSE(later_ran);
  queue.Drain();
  EXPECT_TRUE(later_ran);
}

TEST(BrokerQueueTest, AFullQueueRefusesAndWakesNoMore) {
  BrokerQueue queue(2);
  int wakes = 0;
  queue.SetWaker([&] { ++wakes; });
  EXPECT_TRUE(queue.Push([] {}));
  EXPECT_TRUE(queue.Push([] {}));
  EXPECT_FALSE(queue.Push([] {}));
  EXPECT_EQ(queue.dropped(), 1u);
  EXPECT_EQ(wakes, 1);
}

TEST(BrokerQueueTest, WithoutAWakerTasksWaitForTheDrain) {
  BrokerQueue queue(10);
  bool ran = false;
  ASSERT_TRUE(queue.Push([&] { ran = true; }));
  EXPECT_FALSE(ran);
  queue.Drain();
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace twins
