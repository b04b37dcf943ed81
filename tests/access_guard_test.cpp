// The access rule for twin topics (plugin/access_guard.hpp), case by case.
#include "plugin/access_guard.hpp"

#include <gtest/gtest.h>

namespace twins {
namespace {

constexpr bool kAlone = false;  // no acl_file, no other plugin
constexpr bool kOthers = true;  // an acl_file or a plugin decides the rest

TEST(AccessGuardTest, NothingUnderTwinTopicsIsDeliveredToSubscribers) {
  for (const char* topic : {"$SCW/twins", "$SCW/twins/dev1/d/get/response/success", "$SCW/twins/me/d/get",
                            "$SCW/twins/me/d/updated", "$SCW/twins/x"}) {
    EXPECT_EQ(CheckAccess(topic, AccessKind::kRead, false, kAlone), Verdict::kDeny) << topic;
    EXPECT_EQ(CheckAccess(topic, AccessKind::kRead, false, kOthers), Verdict::kDeny) << topic;
  }
}

TEST(AccessGuardTest, RequestsMayBePublishedAndOthersStillDecideWhoMay) {
  EXPECT_EQ(CheckAccess("$SCW/twins/me/desired/put", AccessKind::kWrite, false, kAlone), Verdict::kAllow);
  EXPECT_EQ(CheckAccess("$SCW/twins/me/desired/put", AccessKind::kWrite, false, kOthers), Verdict::kDefer);
  // Another twin's request is answered by the plugin with an error, so it must get there.
  EXPECT_EQ(CheckAccess("$SCW/twins/other/desired/get", AccessKind::kWrite, false, kAlone), Verdict::kAllow);
}

TEST(AccessGuardTest, ResponsesRetainedMessagesAndOddTopicsCannotBePublished) {
  for (bool others : {kAlone, kOthers}) {
    EXPECT_EQ(CheckAccess("$SCW/twins/me/d/get/response/success", AccessKind::kWrite, false, others), Verdict::kDeny);
    EXPECT_EQ(CheckAccess("$SCW/twins/me/d/get", AccessKind::kWrite, true, others), Verdict::kDeny);
    EXPECT_EQ(CheckAccess("$SCW/twins/me/d", AccessKind::kWrite, false, others), Verdict::kDeny);
    EXPECT_EQ(CheckAccess("$SCW/twins", AccessKind::kWrite, false, others), Verdict::kDeny);
  }
}

TEST(AccessGuardTest, SubscribingIsLeftToTheBroker) {
  EXPECT_EQ(CheckAccess("$SCW/twins/me/#", AccessKind::kSubscribe, false, kAlone), Verdict::kAllow);
  EXPECT_EQ(CheckAccess("$SCW/twins/me/#", AccessKind::kSubscribe, false, kOthers), Verdict::kDefer);
  EXPECT_EQ(CheckAccess("$SCW/twins/me/#", AccessKind::kUnsubscribe, false, kOthers), Verdict::kDefer);
}

TEST(AccessGuardTest, OtherTopicsAreDecidedAsWithoutThePlugin) {
  for (AccessKind access : {AccessKind::kRead, AccessKind::kWrite, AccessKind::kSubscribe}) {
    for (const char* topic : {"sensors/t", "$SCW/twinsX/a", "$SCW/other", "$SYS/broker/uptime", "$SCW"}) {
      EXPECT_EQ(CheckAccess(topic, access, true, kAlone), Verdict::kAllow) << topic;
      EXPECT_EQ(CheckAccess(topic, access, true, kOthers), Verdict::kDefer) << topic;
    }
  }
}

TEST(AccessGuardTest, TwinTerritoryIsTheRootAndBelowOnly) {
  EXPECT_TRUE(IsTwinTerritory("$SCW/twins"));
  EXPECT_TRUE(IsTwinTerritory("$SCW/twins/"));
  EXPECT_TRUE(IsTwinTerritory("$SCW/twins/a/b/c"));
  EXPECT_FALSE(IsTwinTerritory("$SCW/twinsa"));
  EXPECT_FALSE(IsTwinTerritory("$SCW/twin"));
  EXPECT_FALSE(IsTwinTerritory(""));
  EXPECT_FALSE(IsTwinTerritory("$scw/twins/a"));
}

}  // namespace
}  // namespace twins
