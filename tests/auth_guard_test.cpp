// Failed-authentication accounting per source address (rest/auth_guard.hpp), with an
// injected clock.
#include "rest/auth_guard.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace twins {
namespace {

using namespace std::chrono_literals;
using Clock = AuthGuard::Clock;

class AuthGuardTest : public testing::Test {
 protected:
  LogFn Logger() {
    return [this](LogLevel, const std::string& line) { lines_.push_back(line); };
  }
  void Fail(AuthGuard& guard, const std::string& peer, int times) {
    for (int i = 0; i < times; ++i) guard.Failed(peer, "invalid X-Auth-Token", now_);
  }
  Clock::time_point now_ = Clock::now();
  std::vector<std::string> lines_;
};

TEST_F(AuthGuardTest, RefusalStartsAfterTheFreeFailuresAndDoublesUpTo60s) {
  AuthGuard guard(3, 100, Logger());
  Fail(guard, "192.0.2.1", 3);
  EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_), 0u);
  const uint64_t expected_ms[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (uint64_t ms : expected_ms) {
    Fail(guard, "192.0.2.1", 1);
    EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_), ms + 1);
  }
  EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_ + 60s), 0u);
  EXPECT_EQ(guard.RefusedFor("192.0.2.2", now_), 0u);
  EXPECT_EQ(guard.failures(), 11u);
}

TEST_F(AuthGuardTest, ZeroFreeFailuresCountsAndLogsButNeverRefuses) {
  AuthGuard guard(0, 100, Logger());
  Fail(guard, "192.0.2.1", 50);
  EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_), 0u);
  EXPECT_EQ(guard.failures(), 50u);
  ASSERT_FALSE(lines_.empty());
  EXPECT_EQ(lines_[0],
            "REST: authentication failed from 192.0.2.1 (invalid X-Auth-Token): 1 failure from it, 1 in all");
}

TEST_F(AuthGuardTest, AnAddressIsForgottenTenMinutesAfterItsLastFailure) {
  AuthGuard guard(2, 100, Logger());
  Fail(guard, "192.0.2.1", 2);
  now_ += 11min;
  Fail(guard, "192.0.2.1", 2);
  EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_), 0u);  // counted from 1 again
}

TEST_F(AuthGuardTest, Ipv6AddressesCountPerSlash64AndMappedIpv4AsIpv4) {
  AuthGuard guard(1, 100, Logger());
  guard.Failed("2001:db8:1:2::1", "x", now_);
  guard.Failed("2001:db8:1:2:ffff::9", "x", now_);
  EXPECT_GT(guard.RefusedFor("2001:db8:1:2::77", now_), 0u);
  EXPECT_EQ(guard.RefusedFor("2001:db8:1:3::1", now_), 0u);
  guard.Failed("::ffff:192.0.2.9", "x", now_);
  guard.Failed("192.0.2.9", "x", now_);
  EXPECT_GT(guard.RefusedFor("192.0.2.9", now_), 0u);
  EXPECT_NE(lines_[0].find("from 2001:db8:1:2::/64 "), std::string::npos) << lines_[0];
}

TEST_F(AuthGuardTest, TheTableIsBoundedLeastRecentlyFailingForgottenFirst) {
  AuthGuard guard(1, 2, Logger());
  Fail(guard, "192.0.2.1", 2);
  Fail(guard, "192.0.2.2", 2);
  Fail(guard, "192.0.2.3", 2);
  EXPECT_EQ(guard.RefusedFor("192.0.2.1", now_), 0u);
  EXPECT_GT(guard.RefusedFor("192.0.2.2", now_), 0u);
  EXPECT_GT(guard.RefusedFor("192.0.2.3", now_), 0u);
}

TEST_F(AuthGuardTest, LogLinesAreRateLimitedAndTheRestCounted) {
  AuthGuard guard(0, 1000, Logger());
  for (int i = 0; i < 100; ++i) guard.Failed("198.51.100." + std::to_string(i), "x", now_);
  EXPECT_EQ(lines_.size(), 10u);  // a burst of 10, then a line a second
  guard.Failed("203.0.113.1", "x", now_ + 1s);
  ASSERT_EQ(lines_.size(), 11u);
  EXPECT_NE(lines_.back().find("(90 more failures not logged)"), std::string::npos) << lines_.back();
}

}  // namespace
}  // namespace twins
