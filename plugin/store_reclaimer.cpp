#include "store_reclaimer.hpp"

#include <dlfcn.h>

namespace twins {

StoreReclaimer::StoreReclaimer() {
  compact_ = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "db__msg_store_compact"));
  dropped_ = static_cast<const unsigned long*>(dlsym(RTLD_DEFAULT, "g_msgs_dropped"));
  if (dropped_ != nullptr) seen_ = *dropped_;
}

bool StoreReclaimer::OnTick(std::chrono::steady_clock::time_point now) {
  if (!available() || *dropped_ == seen_) return false;
  if (now - last_ < std::chrono::milliseconds(10)) return false;
  seen_ = *dropped_;
  last_ = now;
  compact_();
  return true;
}

}  // namespace twins
