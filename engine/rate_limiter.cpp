#include "engine/rate_limiter.hpp"

#include <algorithm>
#include <cmath>
#include <functional>

namespace twins {

RateLimiter::RateLimiter(uint32_t per_second, uint32_t burst, size_t max_keys)
    : per_second_(per_second),
      burst_(std::max<uint32_t>(burst, 1)),
      max_per_shard_(std::max<size_t>(max_keys / 16, 1)) {}

uint64_t RateLimiter::Acquire(std::string_view key, Clock::time_point now) {
  if (per_second_ <= 0) return 0;
  Shard& shard = shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.buckets.find(std::string(key));
  if (it == shard.buckets.end()) {
    if (shard.buckets.size() >= max_per_shard_) MakeRoom(shard, now);
    it = shard.buckets.emplace(std::string(key), Bucket{burst_, now}).first;
  }
  Bucket& bucket = it->second;
  const double elapsed = std::chrono::duration<double>(now - bucket.updated).count();
  if (elapsed > 0) {
    bucket.tokens = std::min(burst_, bucket.tokens + elapsed * per_second_);
    bucket.updated = now;
  }
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return 0;
  }
  const double wait_ms = (1 - bucket.tokens) / per_second_ * 1000;
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(wait_ms)));
}

size_t RateLimiter::size() {
  size_t total = 0;
  for (Shard& shard : shards_) {
    std::lock_guard<std::mutex> lock(shard.mutex);
    total += shard.buckets.size();
  }
  return total;
}

// Buckets that have refilled completely carry no information: forget them first. If every
// bucket is still draining (many keys all busy), forget the one idle longest.
void RateLimiter::MakeRoom(Shard& shard, Clock::time_point now) {
  const auto refill = std::chrono::duration<double>(burst_ / per_second_);
  for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
    it = now - it->second.updated >= refill ? shard.buckets.erase(it) : std::next(it);
  }
  if (shard.buckets.size() < max_per_shard_) return;
  auto oldest = std::min_element(shard.buckets.begin(), shard.buckets.end(),
                                 [](const auto& a, const auto& b) { return a.second.updated < b.second.updated; });
  shard.buckets.erase(oldest);
}

}  // namespace twins
