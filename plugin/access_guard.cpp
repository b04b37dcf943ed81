#include "plugin/access_guard.hpp"

#include "plugin/mqtt_requests.hpp"

namespace twins {

bool IsTwinTerritory(std::string_view topic) {
  constexpr std::string_view kRoot = "$SCW/twins";
  return topic.compare(0, kRoot.size(), kRoot) == 0 && (topic.size() == kRoot.size() || topic[kRoot.size()] == '/');
}

Verdict CheckAccess(std::string_view topic, AccessKind access, bool retain, bool others_decide) {
  const Verdict open = others_decide ? Verdict::kDefer : Verdict::kAllow;
  if (!IsTwinTerritory(topic)) return open;
  switch (access) {
    case AccessKind::kRead:
      return Verdict::kDeny;
    case AccessKind::kWrite: {
      if (retain) return Verdict::kDeny;
      TwinTopic parsed;
      return ClassifyTopic(topic, &parsed) == TopicKind::kMethod ? open : Verdict::kDeny;
    }
    case AccessKind::kSubscribe:
    case AccessKind::kUnsubscribe:
      return open;
    case AccessKind::kOther:
      break;
  }
  return Verdict::kDeny;
}

}  // namespace twins
