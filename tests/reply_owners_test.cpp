#include "plugin/reply_owners.hpp"

#include <gtest/gtest.h>

namespace twins {
namespace {

const char kFirst[] = "first", kSecond[] = "second";  // two connections: only their addresses matter

TEST(ReplyOwnersTest, ReplyIsReadableByItsOwnConnectionOnly) {
  ReplyOwners owners;
  owners.Request("dev", &kFirst);
  owners.Published("dev", &kFirst, "replies/dev", "{}");
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kFirst, "replies/dev", "{}"));
  EXPECT_TRUE(owners.BelongsToAnother("dev", &kSecond, "replies/dev", "{}"));
}

TEST(ReplyOwnersTest, OtherMessagesAndClientsAreNotConcerned) {
  ReplyOwners owners;
  owners.Published("dev", &kFirst, "replies/dev", "{}");
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kSecond, "replies/dev", "{\"a\":1}"));
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kSecond, "other", "{}"));
  EXPECT_FALSE(owners.BelongsToAnother("dev2", &kSecond, "replies/dev", "{}"));
}

// Its memory may be reused by the next connection: once gone, no connection owns the reply.
TEST(ReplyOwnersTest, GoneConnectionOwnsNothing) {
  ReplyOwners owners;
  owners.Published("dev", &kFirst, "replies/dev", "{}");
  owners.ConnectionGone("dev", &kFirst);
  EXPECT_TRUE(owners.BelongsToAnother("dev", &kFirst, "replies/dev", "{}"));
}

TEST(ReplyOwnersTest, RequestOfANewConnectionForgetsTheOldReplies) {
  ReplyOwners owners;
  owners.Published("dev", &kFirst, "replies/dev", "{}");
  owners.Request("dev", &kSecond);
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kSecond, "replies/dev", "{}"));
  EXPECT_EQ(owners.clients(), 0u);
}

TEST(ReplyOwnersTest, MemoryIsBoundedPerClientAndInClients) {
  ReplyOwners owners(2, 2);
  owners.Published("dev", &kFirst, "r", "1");
  owners.Published("dev", &kFirst, "r", "2");
  owners.Published("dev", &kFirst, "r", "3");
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kSecond, "r", "1"));
  EXPECT_TRUE(owners.BelongsToAnother("dev", &kSecond, "r", "3"));
  owners.Published("b", &kFirst, "r", "1");
  owners.Published("c", &kFirst, "r", "1");
  EXPECT_EQ(owners.clients(), 2u);
  EXPECT_FALSE(owners.BelongsToAnother("dev", &kSecond, "r", "3"));
}

}  // namespace
}  // namespace twins
