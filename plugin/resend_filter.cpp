#include "plugin/resend_filter.hpp"

#include <functional>

namespace twins {

const ResendFilter::Remembered* ResendFilter::Find(std::string_view client, std::string_view twin,
                                                   std::string_view topic, std::string_view payload,
                                                   const std::optional<std::string>& correlation) const {
  auto it = entries_.find(std::string(client));
  if (it == entries_.end()) return nullptr;
  const Entry& entry = it->second;
  if (entry.twin != twin || entry.topic != topic || entry.correlation != correlation ||
      entry.payload_size != payload.size() || entry.payload_hash != std::hash<std::string_view>{}(payload)) {
    return nullptr;
  }
  return &entry.reply;
}

void ResendFilter::ConnectionGone(std::string_view client, const void* connection) {
  auto it = entries_.find(std::string(client));
  if (it != entries_.end() && it->second.reply.connection == connection) it->second.reply.connection = nullptr;
}

void ResendFilter::Claim(std::string_view client, const void* connection) {
  auto it = entries_.find(std::string(client));
  if (it != entries_.end()) it->second.reply.connection = connection;
}

void ResendFilter::Forget(std::string_view client) {
  auto it = entries_.find(std::string(client));
  if (it != entries_.end()) Erase(it);
}

size_t ResendFilter::Cost(const std::string& client, const Entry& entry) {
  return 2 * client.size() + entry.twin.size() + entry.topic.size() + entry.correlation.value_or("").size() +
         entry.reply.reply_topic.size() + entry.reply.reply_payload.size() + 128;  // + map and list nodes
}

void ResendFilter::Erase(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= Cost(it->first, it->second);
  by_age_.erase(it->second.age);
  entries_.erase(it);
}

void ResendFilter::Remember(std::string_view client, std::string_view twin, std::string_view topic,
                            std::string_view payload, const std::optional<std::string>& correlation, Remembered reply) {
  std::string key(client);
  auto old = entries_.find(key);
  if (old != entries_.end()) Erase(old);
  reply.by_correlation = correlation.has_value();
  Entry entry{std::string(twin),
              std::string(topic),
              std::hash<std::string_view>{}(payload),
              payload.size(),
              correlation,
              std::move(reply),
              {}};
  const size_t cost = Cost(key, entry);
  if (cost > max_bytes_) return;
  while (bytes_ + cost > max_bytes_) Erase(entries_.find(by_age_.front()));
  by_age_.push_back(key);
  entry.age = std::prev(by_age_.end());
  entries_.emplace(std::move(key), std::move(entry));
  bytes_ += cost;
}

}  // namespace twins
