#include "store/free_space.hpp"

#include <sys/statvfs.h>

namespace twins {

FreeSpace::FreeSpace(std::string path, std::chrono::milliseconds refresh) : path_(std::move(path)), refresh_(refresh) {
  Refresh();
}

uint64_t FreeSpace::Bytes() {
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto due = next_refresh_.load(std::memory_order_relaxed);
  // One caller wins the refresh; the others go on with the figure they have.
  if (now >= due && next_refresh_.compare_exchange_strong(due, now + refresh_.count(), std::memory_order_relaxed)) {
    return Refresh();
  }
  return bytes_.load(std::memory_order_relaxed);
}

uint64_t FreeSpace::Refresh() {
  struct statvfs fs {};
  const uint64_t bytes = statvfs(path_.c_str(), &fs) == 0 ? uint64_t{fs.f_bavail} * fs.f_frsize : UINT64_MAX;
  bytes_.store(bytes, std::memory_order_relaxed);
  next_refresh_.store(std::chrono::steady_clock::now().time_since_epoch().count() + refresh_.count(),
                      std::memory_order_relaxed);
  return bytes;
}

}  // namespace twins
