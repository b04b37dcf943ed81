// The parsed `_config` of recently used twins, so that a write of a twin with time series
// costs a lookup, not a read and a parse of its `_config` (which may be max_config_bytes).
//
// Bounded: about `capacity_bytes` of `_config` text (each entry is charged its text plus a
// fixed overhead; twins without a `_config` are cached too, at the overhead). The least
// recently used twins are evicted and read again on their next write.
//
// Thread-safe. Consistency is the engine's: it reads, fills and replaces a twin's entry only
// under that twin's write lock, so a miss filled from the store cannot overwrite a newer
// `_config` written meanwhile.
#pragma once

#include <memory>
#include <mutex>
#include <string_view>

#include "common/lru_map.hpp"
#include "engine/twin_config.hpp"

namespace twins {

class ConfigCache {
 public:
  static constexpr size_t kEntryOverhead = 256;

  explicit ConfigCache(size_t capacity_bytes)
      : capacity_(capacity_bytes), entries_(std::make_unique<LruMap<Entry>>(capacity_bytes)) {}

  // The twin's configuration, or nullptr when it is not cached.
  std::shared_ptr<const TwinConfig> Find(std::string_view twin) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto* found = entries_->Find(twin);
    return found != nullptr ? *found : nullptr;
  }

  // `text_bytes`: the size of the `_config` data it was parsed from (0 for none).
  void Set(std::string_view twin, std::shared_ptr<const TwinConfig> config, size_t text_bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_->Insert(twin, std::move(config), text_bytes + kEntryOverhead);
  }

  // Forgets every twin (another process may have changed any `_config`).
  void Clear() {
    std::lock_guard<std::mutex> lock(mutex_);
    entries_ = std::make_unique<LruMap<Entry>>(capacity_);
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_->size();
  }

 private:
  using Entry = std::shared_ptr<const TwinConfig>;
  const size_t capacity_;
  mutable std::mutex mutex_;
  mutable std::unique_ptr<LruMap<Entry>> entries_;
};

}  // namespace twins
