// Recognises the re-send of a QoS 2 request, which Mosquitto 2.0 cannot tell a plugin about.
//
// Why: the broker runs the plugin's MESSAGE callback on every copy of a QoS 2 PUBLISH, the
// DUP re-sends included, before its own duplicate check (src/handle_publish.c in 2.0.11 and
// 2.0.20: plugin__handle_message() comes before db__message_store_find()), and the event
// carries neither the packet id nor the DUP flag. So the plugin remembers the last successful
// QoS 2 write of each client and answers a repeat of it on a later connection (MQTT 3.1.1
// and 5 clients re-send only after reconnecting; on the same connection a repeat is a new
// request) from memory instead of running it again, when the repeat is surely the same
// request:
//   - it carries the same MQTT 5 correlation data (unique per request, as MQTT 5 request/
//     response expects), topic and payload: whatever happened since; or
//   - without correlation data, same topic and payload, and the document is still at the
//     version that write produced (nothing changed it since, so answering from memory and
//     running it again would leave the same data).
// Anything else runs as a new request. Broker-free; not thread-safe (broker thread only).
#pragma once

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace twins {

class ResendFilter {
 public:
  // Keeps at most `max_bytes` of remembered writes (the least recently written clients are
  // forgotten first: their next re-send runs again, as it did before this filter).
  explicit ResendFilter(size_t max_bytes = 16 << 20) : max_bytes_(max_bytes) {}

  struct Remembered {
    std::string reply_topic;
    std::string reply_payload;
    uint64_t version;  // what the write left: the document's version (0 after a delete)
    bool by_correlation;
    const void* connection;  // that got the reply; nullptr once it is gone
  };

  // The remembered write of `client` if this request repeats it (same twin, topic, payload
  // and correlation data). The caller decides with `by_correlation`, `version` and
  // `connection` whether it is a re-send (see above).
  const Remembered* Find(std::string_view client, std::string_view twin, std::string_view topic,
                         std::string_view payload, const std::optional<std::string>& correlation) const;

  // `connection` of `client` is gone (a later one may reuse its address).
  void ConnectionGone(std::string_view client, const void* connection);
  // The remembered write's reply now went to `connection` too.
  void Claim(std::string_view client, const void* connection);
  // The remembered write did not last (its sync failed): forget it.
  void Forget(std::string_view client);

  // After a successful QoS 2 write of `client` to `twin`.
  void Remember(std::string_view client, std::string_view twin, std::string_view topic, std::string_view payload,
                const std::optional<std::string>& correlation, Remembered reply);

 private:
  struct Entry {
    std::string twin;  // whose document the reply shows
    std::string topic;
    uint64_t payload_hash;
    size_t payload_size;
    std::optional<std::string> correlation;
    Remembered reply;
    std::list<std::string>::iterator age;
  };
  static size_t Cost(const std::string& client, const Entry& entry);
  void Erase(std::unordered_map<std::string, Entry>::iterator it);

  const size_t max_bytes_;
  size_t bytes_ = 0;
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> by_age_;  // client ids, least recently written first
};

}  // namespace twins
