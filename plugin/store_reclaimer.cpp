#include "plugin/store_reclaimer.hpp"

#include <dlfcn.h>

#include <algorithm>

namespace twins {

StoreReclaimer::StoreReclaimer() {
  compact_ = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "db__msg_store_compact"));
  dropped_ = static_cast<const unsigned long*>(dlsym(RTLD_DEFAULT, "g_msgs_dropped"));
  if (dropped_ != nullptr) seen_ = *dropped_;
}

bool StoreReclaimer::OnTick(std::chrono::steady_clock::time_point now) {
  if (!available() || !published_ || *dropped_ == seen_ || now < next_) return false;
  published_ = false;
  seen_ = *dropped_;
  compact_();
  const auto took = std::chrono::steady_clock::now() - now;
  // The walk's own garbage makes it longer: capped, so a long walk cannot leave more garbage
  // for the next one without end.
  next_ = now + std::clamp<std::chrono::steady_clock::duration>(20 * took, std::chrono::milliseconds(10),
                                                                std::chrono::milliseconds(100));
  return true;
}

}  // namespace twins
