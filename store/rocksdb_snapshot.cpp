// OpenRocksDbSnapshot: a RocksDB secondary instance caught up once. RocksDB 7.8 refuses
// ReadOptions::snapshot in secondary mode, but a secondary changes only when told to catch up
// (TryCatchUpWithPrimary), so after the one catch-up every iterator sees the same state. With
// max_open_files = -1 it holds every table file open, so the writer's compactions that delete
// them meanwhile take nothing away. A checkpoint (rocksdb::Checkpoint) would need a handle
// on the database too, and the writer may delete the files it links while it does.
#include <rocksdb/db.h>
#include <rocksdb/env.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "store/rocksdb_layout.hpp"
#include "store/store_snapshot.hpp"

namespace twins {
namespace {

using namespace rocksdb_layout;

// The secondary's own messages would go to a LOG file; there is nobody to read them.
class SilentLogger final : public rocksdb::Logger {
 public:
  SilentLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::HEADER_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* /*format*/, va_list /*ap*/) override {}
};

Status FromRocks(const rocksdb::Status& s) { return Status::Internal("storage error: " + s.ToString()); }

std::string Printable(std::string_view key) {
  std::string out;
  for (const char c : key) out += c == '\0' ? '/' : c;
  return out;
}

class RocksDbSnapshot final : public StoreSnapshot {
 public:
  RocksDbSnapshot(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*> handles, std::string secondary_dir)
      : db_(db), handles_(std::move(handles)), secondary_dir_(std::move(secondary_dir)) {}
  ~RocksDbSnapshot() override {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
    db_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(secondary_dir_, ignored);
  }

  // Reads the schema and the change log's bounds; Ok or why this is not a twins database.
  Status Load(const std::string& path) {
    std::string schema;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[0], kSchemaKey, &schema);
    if (s.IsNotFound()) return Status::Internal(path + " holds no twins schema version: not a twins database");
    if (!s.ok()) return FromRocks(s);
    if (schema == "1") {
      schema_ = 1;
    } else if (schema == kSchemaVersion) {
      schema_ = 2;
      if (changes_family() == nullptr) return Status::Internal(path + ": schema 2 without its change log");
    } else {
      return Status::Internal(path + " has twins schema version " + schema + ", this build reads 1 and " +
                              kSchemaVersion);
    }
    if (changes_family() == nullptr) return Status::Ok();
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), changes_family()));
    it->Seek("c");
    if (it->Valid() && it->key().starts_with("c") && it->key().size() == 9) {
      bounds_.oldest = ReadBigEndian(it->key().data() + 1);
    }
    it->SeekForPrev(ChangeKey(UINT64_MAX));
    if (it->Valid() && it->key().starts_with("c") && it->key().size() == 9) {
      bounds_.newest = ReadBigEndian(it->key().data() + 1);
    }
    if (!it->status().ok()) return FromRocks(it->status());
    std::string floor;
    s = db_->Get(rocksdb::ReadOptions(), handles_[0], kNewestSeqKey, &floor);
    if (s.ok() && floor.size() == 8 && ReadBigEndian(floor.data()) > bounds_.newest) {
      const bool empty = bounds_.newest < bounds_.oldest || bounds_.newest == 0;
      bounds_.newest = ReadBigEndian(floor.data());
      if (empty) bounds_.oldest = bounds_.newest + 1;
    } else if (s.ok() && floor.size() != 8) {
      return Status::Internal("corrupt newest seq");
    } else if (!s.ok() && !s.IsNotFound()) {
      return FromRocks(s);
    }
    return Status::Ok();
  }

  int schema() const override { return schema_; }
  ChangeBounds changes() const override { return bounds_; }

  Status Documents(const std::function<Status(SnapshotDocument&)>& visit) const override {
    return Scan(handles_[0], "d", [&](std::string_view key, std::string_view value) {
      SnapshotDocument document;
      const size_t nul = key.find('\0');
      if (nul == std::string_view::npos) return Status::Internal("corrupt document key d" + Printable(key));
      document.twin.assign(key.substr(0, nul));
      document.doc.assign(key.substr(nul + 1));
      const size_t header = schema_ == 1 ? 8 : 16;
      if (value.size() < header) {
        return Status::Internal("corrupt document record of " + document.twin + "/" + document.doc);
      }
      document.document.version = ReadLittleEndian(value.data());
      if (schema_ != 1) document.document.modified_ms = static_cast<int64_t>(ReadLittleEndian(value.data() + 8));
      document.document.data.assign(value.substr(header));
      return visit(document);
    });
  }

  Status Watches(const std::function<Status(WatchRecord&)>& visit) const override {
    if (schema_ == 1) return Status::Ok();
    return Scan(handles_[0], "w", [&](std::string_view key, std::string_view value) {
      WatchRecord watch;
      if (!DecodeWatchKey(key, &watch)) return Status::Internal("corrupt watch key w" + Printable(key));
      watch.value.assign(value);
      return visit(watch);
    });
  }

  Status ChangeLog(const std::function<Status(Change&)>& visit) const override {
    if (changes_family() == nullptr) return Status::Ok();
    return Scan(changes_family(), "c", [&](std::string_view key, std::string_view value) {
      if (key.size() != 8) return Status::Internal("corrupt change-log key c" + Printable(key));
      Change change;
      const uint64_t seq = ReadBigEndian(key.data());
      if (!DecodeChange(seq, value, &change)) {
        return Status::Internal("corrupt change-log entry " + std::to_string(seq));
      }
      return visit(change);
    });
  }

  Status VersionIndex(const std::function<Status(VersionIndexEntry&)>& visit) const override {
    if (changes_family() == nullptr) return Status::Ok();
    return Scan(changes_family(), "h", [&](std::string_view key, std::string_view value) {
      VersionIndexEntry entry;
      const size_t first = key.find('\0');
      const size_t second = first == std::string_view::npos ? first : key.find('\0', first + 1);
      if (second == std::string_view::npos || key.size() - second - 1 != 8 || value.size() != 8) {
        return Status::Internal("corrupt version index key h" + Printable(key));
      }
      entry.twin.assign(key.substr(0, first));
      entry.doc.assign(key.substr(first + 1, second - first - 1));
      entry.version = ReadBigEndian(key.data() + second + 1);
      entry.seq = ReadBigEndian(value.data());
      return visit(entry);
    });
  }

 private:
  rocksdb::ColumnFamilyHandle* changes_family() const { return handles_.size() > 1 ? handles_[1] : nullptr; }

  // Visits the keys starting with `prefix`, the prefix taken off.
  template <class Visit>
  Status Scan(rocksdb::ColumnFamilyHandle* family, std::string_view prefix, Visit visit) const {
    rocksdb::ReadOptions all;
    all.total_order_seek = true;
    all.fill_cache = false;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(all, family));
    for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
      const std::string_view key(it->key().data(), it->key().size());
      if (key.substr(0, prefix.size()) != prefix) break;
      Status s = visit(key.substr(prefix.size()), std::string_view(it->value().data(), it->value().size()));
      if (!s.ok()) return s;
    }
    return it->status().ok() ? Status::Ok() : FromRocks(it->status());
  }

  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // default, then "changes" when there is one
  const std::string secondary_dir_;
  int schema_ = 2;
  ChangeBounds bounds_;
};

}  // namespace

Result<std::unique_ptr<StoreSnapshot>> OpenRocksDbSnapshot(const std::string& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(std::filesystem::path(path) / "CURRENT", error)) {
    return Status::NotFound("no database at " + path);
  }
  rocksdb::Options options;
  options.max_open_files = -1;  // a secondary instance needs every table file open
  options.info_log = std::make_shared<SilentLogger>();
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, path, &names);
  if (!s.ok()) return Status::Internal("cannot read the database at " + path + ": " + s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {{rocksdb::kDefaultColumnFamilyName, options}};
  for (const std::string& name : names) {
    if (name == kChangesFamily) families.emplace_back(name, options);
  }
  // The writer may delete a file (an old log, a compacted table) between the secondary's
  // listing and its reading it: that fails the catch-up, and the next try sees the new files.
  for (int attempt = 1;; ++attempt) {
    std::string secondary = (std::filesystem::temp_directory_path(error) / "twins-snapshot-XXXXXX").string();
    if (mkdtemp(secondary.data()) == nullptr) {
      return Status::Internal("cannot make a temporary directory: " + std::string(std::strerror(errno)));
    }
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    s = rocksdb::DB::OpenAsSecondary(options, path, secondary, families, &handles, &raw);
    if (s.ok()) {
      auto snapshot = std::make_unique<RocksDbSnapshot>(raw, std::move(handles), secondary);
      s = raw->TryCatchUpWithPrimary();
      if (s.ok()) {
        Status loaded = snapshot->Load(path);
        if (!loaded.ok()) return loaded;
        return std::unique_ptr<StoreSnapshot>(std::move(snapshot));
      }
    } else {
      std::filesystem::remove_all(secondary, error);
    }
    if (attempt == 10) return Status::Internal("cannot open the database at " + path + ": " + s.ToString());
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
  }
}

}  // namespace twins
