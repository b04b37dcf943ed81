// Per-twin token buckets (engine/rate_limiter.hpp), with a hand-driven clock.
#include "engine/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace twins {
namespace {

using std::chrono::milliseconds;
const RateLimiter::Clock::time_point t0{};

TEST(RateLimiterTest, BurstThenOneTokenPerPeriod) {
  RateLimiter limiter(10, 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.Acquire("a", t0), 0u);
  EXPECT_EQ(limiter.Acquire("a", t0), 100u);  // one token takes 100 ms at 10/s
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(40)), 60u);
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(100)), 0u);
  EXPECT_EQ(limiter.Acquire("a", t0 + milliseconds(100)), 100u);
}

TEST(RateLimiterTest, TwinsHaveTheirOwnBuckets) {
  RateLimiter limiter(1, 1);
  EXPECT_EQ(limiter.Acquire("a", t0), 0u);
  EXPECT_GT(limiter.Acquire("a", t0), 0u);
  EXPECT_EQ(limiter.Acquire("b", t0), 0u);
}

TEST(RateLimiterTest, IdleTimeRefillsUpToTheBurstOnly) {
  RateLimiter limiter(100, 2);
  EXPECT_EQ(limiter.Acquire("a", t0), 0u);
  EXPECT_EQ(limiter.Acquire("a", t0), 0u);
  const auto later = t0 + std::chrono::hours(1);
  EXPECT_EQ(limiter.Acquire("a", later), 0u);
  EXPECT_EQ(limiter.Acquire("a", later), 0u);
  EXPECT_EQ(limiter.Acquire("a", later), 10u);
}

TEST(RateLimiterTest, ZeroRateAdmitsEverything) {
  RateLimiter limiter(0, 1);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.Acquire("a", t0), 0u);
}

TEST(RateLimiterTest, ManyKeysStayWithinTheBound) {
  RateLimiter limiter(1, 1, 16 * 4);  // 4 keys per shard
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(limiter.Acquire("k" + std::to_string(i), t0 + milliseconds(i)), 0u);
  EXPECT_LE(limiter.size(), 64u);
  EXPECT_GT(limiter.size(), 0u);
}

TEST(RateLimiterTest, RefilledBucketsAreForgottenAllAtOnceWhenRoomIsNeeded) {
  RateLimiter limiter(1, 1, 16 * 4);
  for (int i = 0; i < 640; ++i) ASSERT_EQ(limiter.Acquire("k" + std::to_string(i), t0), 0u);
  const size_t full = limiter.size();
  // Ten seconds later every bucket is full again: the first new key of a full shard clears
  // its shard's refilled buckets, not just one.
  for (int i = 0; i < 4; ++i) limiter.Acquire("fresh" + std::to_string(i), t0 + milliseconds(10000));
  EXPECT_LT(limiter.size(), full);
}

TEST(RateLimiterTest, ConcurrentCallersTakeExactlyTheBurst) {
  RateLimiter limiter(1, 1000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) admitted += limiter.Acquire("shared", t0) == 0;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(admitted.load(), 1000);
}

}  // namespace
}  // namespace twins
