// Per-twin token buckets (store/rate_limiter.hpp), with a hand-driven clock.
#include "rate_limiter.hpp"

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
  EXPECT_FALSE(limiter.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.Acquire("a", t0), 0u);
}

TEST(RateLimiterTest, ManyKeysStayWithinTheBoundAndForgetFullBucketsFirst) {
  RateLimiter limiter(1, 1, 16 * 4);  // 4 keys per shard
  EXPECT_EQ(limiter.Acquire("busy", t0), 0u);
  // Thousands of other keys come and go; the bound keeps memory flat and, since those
  // buckets refill within a second, "busy" (drained just now) is remembered meanwhile.
  for (int i = 0; i < 5000; ++i) ASSERT_EQ(limiter.Acquire("k" + std::to_string(i), t0 + milliseconds(2000)), 0u);
  EXPECT_EQ(limiter.Acquire("busy", t0 + milliseconds(2000)), 0u);  // refilled after 2 s anyway
  EXPECT_GT(limiter.Acquire("busy", t0 + milliseconds(2000)), 0u);
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
