// A RocksDB file system that knows what a power cut would leave: for every file written
// through it, what a Sync or Fsync made durable. CopyAfterPowerCut copies a database folder as
// the disk would hold it after a cut: each file appended to (RocksDB's) cut to its durable
// length, each file written in place (the store's own) as it was at its last sync, so that
// every write after a file's last sync is lost, as the kernel's cache is. Files it did not
// write are copied whole, and directory entries are kept.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace twins::test {

class PowerCutFileSystem : public rocksdb::FileSystemWrapper {
 public:
  PowerCutFileSystem() : rocksdb::FileSystemWrapper(rocksdb::FileSystem::Default()) {}

  const char* Name() const override { return "PowerCutFileSystem"; }

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, file, debug);
    if (s.ok()) *file = std::make_unique<AppendedFile>(std::move(*file), this, Track(name, 0), IsLog(name));
    return s;
  }

  // Reopened for appending: what the file holds already counts as durable.
  rocksdb::IOStatus ReopenWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* file,
                                       rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->ReopenWritableFile(name, options, file, debug);
    std::error_code error;
    const uint64_t size = std::filesystem::file_size(name, error);
    if (s.ok()) {
      *file = std::make_unique<AppendedFile>(std::move(*file), this, Track(name, error ? 0 : size), IsLog(name));
    }
    return s;
  }

  // Written in place: durable as it is when opened, then as it is at each sync.
  rocksdb::IOStatus NewRandomRWFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* file,
                                    rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->NewRandomRWFile(name, options, file, debug);
    if (!s.ok()) return s;
    *file = std::make_unique<InPlaceFile>(std::move(*file), this, name);
    std::lock_guard<std::mutex> lock(mutex_);
    if (in_place_.count(name) == 0) in_place_[name] = ReadWhole(name);
    return s;
  }

  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->RenameFile(from, to, options, debug);
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = appended_.find(from);
    if (s.ok() && found != appended_.end()) {
      appended_[to] = found->second;
      appended_.erase(found);
    }
    return s;
  }

  rocksdb::IOStatus DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->DeleteFile(name, options, debug);
    std::lock_guard<std::mutex> lock(mutex_);
    if (s.ok()) appended_.erase(name);
    return s;
  }

  // Copies the folder `from` into `to` (created) as a power cut would leave it now.
  void CopyAfterPowerCut(const std::string& from, const std::string& to) {
    std::filesystem::create_directories(to);
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : std::filesystem::directory_iterator(from)) {
      const std::string copy = to + "/" + entry.path().filename().string();
      auto in_place = in_place_.find(entry.path().string());
      if (in_place != in_place_.end()) {
        std::ofstream(copy, std::ios::binary) << in_place->second;
        continue;
      }
      std::filesystem::copy_file(entry.path(), copy);
      auto appended = appended_.find(entry.path().string());
      if (appended != appended_.end()) std::filesystem::resize_file(copy, appended->second->durable.load());
    }
  }

  // How many times a write-ahead log (*.log) was made durable (Sync or Fsync).
  uint64_t log_syncs() const { return log_syncs_.load(); }
  // How many times a file written in place was.
  uint64_t in_place_syncs() const { return in_place_syncs_.load(); }

 private:
  struct Sizes {
    std::atomic<uint64_t> written{0};
    std::atomic<uint64_t> durable{0};
  };

  // A file wrapper that calls Durable() after each Sync or Fsync that succeeded.
  template <class Wrapper>
  class NotingSyncs : public Wrapper {
   public:
    using Wrapper::Wrapper;

    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = Wrapper::Sync(options, debug);
      if (s.ok()) Durable();
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = Wrapper::Fsync(options, debug);
      if (s.ok()) Durable();
      return s;
    }

   protected:
    virtual void Durable() = 0;
  };

  class AppendedFile : public NotingSyncs<rocksdb::FSWritableFileOwnerWrapper> {
   public:
    AppendedFile(std::unique_ptr<rocksdb::FSWritableFile> file, PowerCutFileSystem* fs, std::shared_ptr<Sizes> sizes,
                 bool log)
        : NotingSyncs(std::move(file)), fs_(fs), sizes_(std::move(sizes)), log_(log) {}

    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = target()->Append(data, options, debug);
      if (s.ok()) sizes_->written += data.size();
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             const rocksdb::DataVerificationInfo& info, rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = target()->Append(data, options, info, debug);
      if (s.ok()) sizes_->written += data.size();
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, debug);
      if (s.ok()) sizes_->written = std::max<uint64_t>(sizes_->written, offset + data.size());
      return s;
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const rocksdb::IOOptions& options,
                                       const rocksdb::DataVerificationInfo& info,
                                       rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, info, debug);
      if (s.ok()) sizes_->written = std::max<uint64_t>(sizes_->written, offset + data.size());
      return s;
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* debug) override {
      rocksdb::IOStatus s = target()->Truncate(size, options, debug);
      if (s.ok()) sizes_->written = size;
      return s;
    }

   private:
    void Durable() override {
      sizes_->durable = sizes_->written.load();
      if (log_) ++fs_->log_syncs_;
    }

    PowerCutFileSystem* const fs_;
    const std::shared_ptr<Sizes> sizes_;
    const bool log_;
  };

  class InPlaceFile : public NotingSyncs<rocksdb::FSRandomRWFileOwnerWrapper> {
   public:
    InPlaceFile(std::unique_ptr<rocksdb::FSRandomRWFile> file, PowerCutFileSystem* fs, std::string name)
        : NotingSyncs(std::move(file)), fs_(fs), name_(std::move(name)) {}

   private:
    void Durable() override {
      std::lock_guard<std::mutex> lock(fs_->mutex_);
      fs_->in_place_[name_] = ReadWhole(name_);
      ++fs_->in_place_syncs_;
    }

    PowerCutFileSystem* const fs_;
    const std::string name_;
  };

  static bool IsLog(const std::string& name) {
    return name.size() > 4 && name.compare(name.size() - 4, 4, ".log") == 0;
  }

  static std::string ReadWhole(const std::string& name) {
    std::ifstream in(name, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  std::shared_ptr<Sizes> Track(const std::string& name, uint64_t size) {
    auto sizes = std::make_shared<Sizes>();
    sizes->written = size;
    sizes->durable = size;
    std::lock_guard<std::mutex> lock(mutex_);
    appended_[name] = sizes;
    return sizes;
  }

  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Sizes>> appended_;  // by path, as RocksDB names them
  std::map<std::string, std::string> in_place_;             // durable content, by path
  std::atomic<uint64_t> log_syncs_{0};
  std::atomic<uint64_t> in_place_syncs_{0};
};

}  // namespace twins::test
