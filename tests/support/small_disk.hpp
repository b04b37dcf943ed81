// A tmpfs of a few MiB mounted on a directory for the life of the object, to fill a disk for
// real (the tests run as root; without root mounted() is false and the test skips).
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace twins::test {

class SmallDisk {
 public:
  SmallDisk(const std::string& path, int megabytes) : path_(path) {
    mkdir(path.c_str(), 0700);
    const std::string mount = "mount -t tmpfs -o size=" + std::to_string(megabytes) + "m tmpfs " + path;
    mounted_ = geteuid() == 0 && std::system(mount.c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted_) static_cast<void>(std::system(("umount -l " + path_).c_str()));
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool mounted() const { return mounted_; }

  // Writes a filler file that takes all the free space but `leave_bytes` (in 4 KiB steps).
  void Fill(long long leave_bytes = 0) {
    FILE* filler = std::fopen(filler_path().c_str(), "w");
    const std::string chunk(4096, 'f');
    while (filler != nullptr && FreeBytes() >= leave_bytes + static_cast<long long>(chunk.size()) &&
           std::fwrite(chunk.data(), 1, chunk.size(), filler) == chunk.size() && std::fflush(filler) == 0) {
    }
    if (filler != nullptr) std::fclose(filler);
  }
  // Gives the filler's space back.
  void Free() { std::remove(filler_path().c_str()); }

  long long FreeBytes() const {
    struct statvfs fs {};
    return statvfs(path_.c_str(), &fs) == 0 ? static_cast<long long>(fs.f_bavail) * fs.f_frsize : -1;
  }

 private:
  std::string filler_path() const { return path_ + "/filler"; }

  std::string path_;
  bool mounted_ = false;
};

}  // namespace twins::test
