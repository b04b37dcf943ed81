// Keeps replies sent on a device's own MQTT 5 Response Topic from reaching a later connection
// with the same client id.
//
// Why: a reply is published to the requesting connection only, but a QoS > 0 reply still
// queued when that connection goes stays in the client id's session, and the broker hands the
// session's queue to the next connection with that client id (a reconnect or a takeover),
// checking only READ access (src/handle_connect.c connection_check_acl() in 2.0,
// db__check_acl_of_all_messages() in 2.1). Replies on the .../response/... topics are under
// $SCW/twins/, where the plugin refuses every READ (access_guard.hpp); a Response Topic may be
// anywhere. So the plugin remembers which connection each such reply was for (a hash of topic
// and payload), and refuses the READ of a remembered reply for any other connection.
// Broker-free; not thread-safe (broker thread only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace twins {

class ReplyOwners {
 public:
  // Remembers at most `per_client` replies of one client id (the oldest are forgotten first;
  // Mosquitto queues at most max_queued_messages, 1000 by default) and at most `max_clients`
  // client ids (the least recently used are forgotten first).
  explicit ReplyOwners(size_t per_client = 1024, size_t max_clients = 16384)
      : per_client_(per_client), max_clients_(max_clients) {}

  // Before a request of `connection` is answered: a new connection of the client id means
  // the previous one's queue has been checked at its connect, so its replies are forgotten.
  void Request(std::string_view client, const void* connection);
  // After a reply on `topic` with `payload` was published to `connection` of `client`.
  void Published(std::string_view client, const void* connection, std::string_view topic, std::string_view payload);
  // `connection` of `client` is gone (a later connection may reuse its address).
  void ConnectionGone(std::string_view client, const void* connection);
  // A READ check: true when this message is a reply remembered for another connection.
  bool BelongsToAnother(std::string_view client, const void* connection, std::string_view topic,
                        std::string_view payload) const;

  size_t clients() const { return owners_.size(); }

 private:
  struct Owner {
    const void* connection;
    std::deque<uint64_t> order;  // oldest first
    std::unordered_multiset<uint64_t> replies;
    std::list<std::string>::iterator age;
  };
  static uint64_t Hash(std::string_view topic, std::string_view payload);

  const size_t per_client_;
  const size_t max_clients_;
  std::unordered_map<std::string, Owner> owners_;
  std::list<std::string> by_age_;  // client ids, least recently used first
};

}  // namespace twins
