// Who may publish and receive what under $SCW/twins/: the rule behind the plugin's access
// check (MOSQ_EVT_ACL_CHECK), free of broker calls so tests and fuzzers link it directly.
//
// Every message the plugin sends (replies) goes to one client with
// mosquitto_broker_publish_copy, which the broker never checks for READ access. So any
// message routed to subscribers under $SCW/twins/ came from a client, a Will or the retained
// store, never from the plugin: reading it is refused, which makes forged replies (published,
// retained, or left as a Will) undeliverable. Publishing is allowed only on request topics and
// never retained, so a retained message under $SCW/twins/ can never be stored.
#pragma once

#include <string_view>

namespace twins {

enum class AccessKind { kRead, kWrite, kSubscribe, kUnsubscribe, kOther };
enum class Verdict { kAllow, kDeny, kDefer };

// True for $SCW/twins and every topic below it.
bool IsTwinTerritory(std::string_view topic);

// `others_decide`: the broker has other access checkers (an acl_file, an auth plugin) that
// must decide what the twin rules leave open, exactly as they would without this plugin.
// Without them the broker allows everything, and so does this rule outside twin territory.
Verdict CheckAccess(std::string_view topic, AccessKind access, bool retain, bool others_decide);

}  // namespace twins
