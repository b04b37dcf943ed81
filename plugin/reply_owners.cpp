#include "plugin/reply_owners.hpp"

#include <functional>

namespace twins {

uint64_t ReplyOwners::Hash(std::string_view topic, std::string_view payload) {
  const uint64_t t = std::hash<std::string_view>{}(topic);
  const uint64_t p = std::hash<std::string_view>{}(payload);
  return t ^ (p + 0x9e3779b97f4a7c15ULL + (t << 6) + (t >> 2));
}

void ReplyOwners::Request(std::string_view client, const void* connection) {
  if (owners_.empty()) return;
  auto it = owners_.find(std::string(client));
  if (it == owners_.end() || it->second.connection == connection) return;
  by_age_.erase(it->second.age);
  owners_.erase(it);
}

void ReplyOwners::Published(std::string_view client, const void* connection, std::string_view topic,
                            std::string_view payload) {
  auto [it, added] = owners_.try_emplace(std::string(client));
  Owner& owner = it->second;
  if (added) {
    owner.connection = connection;
    owner.age = by_age_.insert(by_age_.end(), it->first);
  } else {
    by_age_.splice(by_age_.end(), by_age_, owner.age);
    if (owner.connection != connection) {
      owner.connection = connection;
      owner.order.clear();
      owner.replies.clear();
    }
  }
  const uint64_t hash = Hash(topic, payload);
  owner.order.push_back(hash);
  owner.replies.insert(hash);
  if (owner.order.size() > per_client_) {
    owner.replies.erase(owner.replies.find(owner.order.front()));
    owner.order.pop_front();
  }
  if (owners_.size() > max_clients_) {
    owners_.erase(by_age_.front());
    by_age_.pop_front();
  }
}

void ReplyOwners::ConnectionGone(std::string_view client, const void* connection) {
  if (owners_.empty()) return;
  auto it = owners_.find(std::string(client));
  if (it != owners_.end() && it->second.connection == connection) it->second.connection = nullptr;
}

bool ReplyOwners::BelongsToAnother(std::string_view client, const void* connection, std::string_view topic,
                                   std::string_view payload) const {
  if (owners_.empty()) return false;
  auto it = owners_.find(std::string(client));
  if (it == owners_.end() || (connection != nullptr && it->second.connection == connection)) return false;
  return it->second.replies.count(Hash(topic, payload)) > 0;
}

}  // namespace twins
