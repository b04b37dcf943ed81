// The queue of work for the broker thread: order, capacity, drops, pushes from many threads,
// and the wake it asks for.
#include "plugin/broker_queue.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace twins {
namespace {

TEST(BrokerQueueTest, DrainRunsEveryTaskOnceInPushOrder) {
  BrokerQueue queue(8);
  std::vector<int> ran;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(queue.Push([&ran, i] { ran.push_back(i); }));
  queue.Drain();
  EXPECT_EQ(ran, (std::vector<int>{0, 1, 2}));
  queue.Drain();
  EXPECT_EQ(ran.size(), 3u);
  EXPECT_EQ(queue.dropped(), 0u);
}

TEST(BrokerQueueTest, PushBeyondCapacityIsRefusedAndCounted) {
  BrokerQueue queue(2);
  int ran = 0;
  EXPECT_TRUE(queue.Push([&ran] { ++ran; }));
  EXPECT_TRUE(queue.Push([&ran] { ++ran; }));
  EXPECT_FALSE(queue.Push([&ran] { ran += 100; }));
  EXPECT_FALSE(queue.Push([&ran] { ran += 100; }));
  EXPECT_EQ(queue.dropped(), 2u);
  queue.Drain();
  EXPECT_EQ(ran, 2);
  // Draining makes room again.
  EXPECT_TRUE(queue.Push([&ran] { ++ran; }));
  queue.Drain();
  EXPECT_EQ(ran, 3);
}

// A reply handed back by the batch thread must reach the broker thread even when log lines
// filled the queue: dropping it would lose the reply and its bookkeeping (in_flight).
TEST(BrokerQueueTest, RequiredTasksAreKeptWhenTheQueueIsFullAndRunInOrder) {
  int woken = 0;
  BrokerQueue queue(2);
  queue.SetWaker([&woken] { ++woken; });
  std::vector<int> ran;
  EXPECT_TRUE(queue.Push([&ran] { ran.push_back(1); }));
  EXPECT_TRUE(queue.Push([&ran] { ran.push_back(2); }));
  queue.PushRequired([&ran] { ran.push_back(3); });
  EXPECT_FALSE(queue.Push([&ran] { ran.push_back(100); }));  // the bounded kind still is
  queue.PushRequired([&ran] { ran.push_back(4); });
  EXPECT_EQ(woken, 1);  // one wake until drained
  queue.Drain();
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4}));
  EXPECT_EQ(queue.dropped(), 1u);
  queue.PushRequired([&ran] { ran.push_back(5); });
  EXPECT_EQ(woken, 2);
}

TEST(BrokerQueueTest, ZeroCapacityRefusesEverything) {
  BrokerQueue queue(0);
  bool ran = false;
  EXPECT_FALSE(queue.Push([&ran] { ran = true; }));
  queue.Drain();
  EXPECT_FALSE(ran);
  EXPECT_EQ(queue.dropped(), 1u);
}

TEST(BrokerQueueTest, ATaskMayPushMoreWorkWhichRunsOnTheNextDrain) {
  BrokerQueue queue(4);
  std::vector<int> ran;
  ASSERT_TRUE(queue.Push([&] {
    ran.push_back(1);
    EXPECT_TRUE(queue.Push([&ran] { ran.push_back(2); }));
  }));
  queue.Drain();
  EXPECT_EQ(ran, (std::vector<int>{1}));
  queue.Drain();
  EXPECT_EQ(ran, (std::vector<int>{1, 2}));
}

TEST(BrokerQueueTest, PushesFromManyThreadsWhileDrainingAreEachRunOrCountedAsDropped) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  BrokerQueue queue(64);
  std::atomic<int> accepted{0};
  int ran = 0;  // only the draining thread touches it
  std::vector<std::thread> pushers;
  for (int t = 0; t < kThreads; ++t) {
    pushers.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (queue.Push([&ran] { ++ran; })) ++accepted;
      }
    });
  }
  std::atomic<bool> done{false};
  std::thread drainer([&] {
    while (!done) queue.Drain();
    queue.Drain();
  });
  for (auto& pusher : pushers) pusher.join();
  done = true;
  drainer.join();
  EXPECT_EQ(ran, accepted.load());
  EXPECT_EQ(static_cast<uint64_t>(accepted.load()) + queue.dropped(), uint64_t{kThreads} * kPerThread);
}

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
