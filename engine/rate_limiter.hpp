// Token buckets keyed by twin id: each key earns `per_second` tokens a second, keeps at most
// `burst`, and spends one per request. Bounded memory whatever the number of keys.
//
// Thread-safety: Acquire may be called from any thread at once (sharded locks).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace twins {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  // per_second 0 disables limiting. `max_keys` bounds the table: a key forgotten to make
  // room starts again with a full bucket, so the bound only ever errs towards admitting.
  RateLimiter(uint32_t per_second, uint32_t burst, size_t max_keys = 1 << 16);

  // 0 when the request may go ahead (its token is taken), else the milliseconds until a
  // token is available (at least 1).
  uint64_t Acquire(std::string_view key, Clock::time_point now = Clock::now());

  // Buckets held now.
  size_t size();

 private:
  struct Bucket {
    double tokens;
    Clock::time_point updated;
  };
  struct Shard {
    std::mutex mutex;
    std::unordered_map<std::string, Bucket> buckets;
  };
  void MakeRoom(Shard& shard, Clock::time_point now);

  const double per_second_;
  const double burst_;
  const size_t max_per_shard_;
  std::array<Shard, 16> shards_;
};

}  // namespace twins
