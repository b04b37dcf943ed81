// The free space of the filesystem that holds a path, for the store's free-space reserve.
// statvfs is a system call, costly next to a group-committed patch (docs/performance.md), so it
// is read at most once per refresh interval; callers in between pay a clock read and an
// atomic load.
//
// Thread-safety: every method may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace twins {

class FreeSpace {
 public:
  FreeSpace(std::string path, std::chrono::milliseconds refresh);

  // Bytes available to an unprivileged process, as read at most `refresh` ago. The caller
  // that finds the figure stale reads it again; callers meanwhile get the previous one.
  // UINT64_MAX when the filesystem cannot be asked (nothing is refused on a guess).
  uint64_t Bytes();
  // Reads the figure now.
  uint64_t Refresh();

 private:
  const std::string path_;
  const std::chrono::steady_clock::duration refresh_;
  std::atomic<std::chrono::steady_clock::rep> next_refresh_{0};
  std::atomic<uint64_t> bytes_{UINT64_MAX};
};

}  // namespace twins
