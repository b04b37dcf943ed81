// Remembering each client's last QoS 2 write (plugin/resend_filter.hpp).
#include "plugin/resend_filter.hpp"

#include <gtest/gtest.h>

#include <string>

namespace twins {
namespace {

ResendFilter::Remembered Reply(uint64_t version) {
  return {"t/response/success", "{\"version\":" + std::to_string(version) + "}", version, false, nullptr};
}

TEST(ResendFilterTest, TheSameRequestIsFoundWithItsReply) {
  ResendFilter filter;
  filter.Remember("dev", "twin", "t", "{\"data\":{}}", std::nullopt, Reply(3));
  const auto* found = filter.Find("dev", "twin", "t", "{\"data\":{}}", std::nullopt);
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->version, 3u);
  EXPECT_EQ(found->reply_payload, "{\"version\":3}");
  EXPECT_FALSE(found->by_correlation);
}

TEST(ResendFilterTest, AnyDifferenceIsANewRequest) {
  ResendFilter filter;
  filter.Remember("dev", "twin", "t", "p", std::string("c1"), Reply(1));
  EXPECT_NE(filter.Find("dev", "twin", "t", "p", std::string("c1")), nullptr);
  EXPECT_TRUE(filter.Find("dev", "twin", "t", "p", std::string("c1"))->by_correlation);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::string("c2")), nullptr);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt), nullptr);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "q", std::string("c1")), nullptr);
  EXPECT_EQ(filter.Find("dev", "twin", "u", "p", std::string("c1")), nullptr);
  EXPECT_EQ(filter.Find("other", "twin", "t", "p", std::string("c1")), nullptr);
  // The same client id asking for another twin (another user, under username identity).
  EXPECT_EQ(filter.Find("dev", "another", "t", "p", std::string("c1")), nullptr);
}

TEST(ResendFilterTest, OnlyTheLastWriteOfAClientIsRemembered) {
  ResendFilter filter;
  filter.Remember("dev", "twin", "t", "first", std::nullopt, Reply(1));
  filter.Remember("dev", "twin", "t", "second", std::nullopt, Reply(2));
  EXPECT_EQ(filter.Find("dev", "twin", "t", "first", std::nullopt), nullptr);
  EXPECT_NE(filter.Find("dev", "twin", "t", "second", std::nullopt), nullptr);
}

TEST(ResendFilterTest, ConnectionsAreTrackedAndAFailedWriteIsForgotten) {
  ResendFilter filter;
  int first = 0, second = 0;
  ResendFilter::Remembered reply = Reply(1);
  reply.connection = &first;
  filter.Remember("dev", "twin", "t", "p", std::nullopt, reply);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt)->connection, &first);
  filter.ConnectionGone("dev", &second);  // another connection of that id: no change
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt)->connection, &first);
  filter.ConnectionGone("dev", &first);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt)->connection, nullptr);
  filter.Claim("dev", &second);
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt)->connection, &second);
  filter.Forget("dev");
  EXPECT_EQ(filter.Find("dev", "twin", "t", "p", std::nullopt), nullptr);
}

TEST(ResendFilterTest, MemoryIsBoundedAndTheOldestClientsGoFirst) {
  ResendFilter filter(64 * 1024);
  const std::string big(1000, 'x');
  for (int i = 0; i < 1000; ++i) {
    ResendFilter::Remembered reply = Reply(1);
    reply.reply_payload = big;
    filter.Remember("dev" + std::to_string(i), "twin", "t", "p", std::nullopt, reply);
  }
  EXPECT_EQ(filter.Find("dev0", "twin", "t", "p", std::nullopt), nullptr);
  EXPECT_NE(filter.Find("dev999", "twin", "t", "p", std::nullopt), nullptr);
  // A reply larger than the whole budget is simply not remembered.
  ResendFilter small(100);
  small.Remember("dev", "twin", "t", "p", std::nullopt, Reply(1));
  EXPECT_EQ(small.Find("dev", "twin", "t", "p", std::nullopt), nullptr);
}

}  // namespace
}  // namespace twins
