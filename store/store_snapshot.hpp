// A read-only view of a whole store at one moment, for backups and checks (mosquitto-twins-admin):
// every document, watch and retained change-log entry. Opening one never writes the database,
// and works while another process (the broker) has it open for writing.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.hpp"
#include "store/document_store.hpp"

namespace twins {

struct SnapshotDocument {
  std::string twin;
  std::string doc;
  StoredDocument document;
};

// An entry of the change log's version index: version `version` of a document was made by
// the entry `seq`.
struct VersionIndexEntry {
  std::string twin;
  std::string doc;
  uint64_t version = 0;
  uint64_t seq = 0;
};

// Every visit sees the same moment: what the writer had made durable (a crash would have left
// the same), whole write batches only. A visit returning an error stops the walk and is
// returned; a record that does not decode stops it with kInternal naming the record.
// Not thread-safe.
class StoreSnapshot {
 public:
  virtual ~StoreSnapshot() = default;

  // The database's schema version: RocksDB 1 or 2, PostgreSQL 1 (store/postgres_snapshot.hpp).
  virtual int schema() const = 0;
  // The change log's retained entries, and the seq it goes on after.
  virtual ChangeBounds changes() const = 0;
  // By twin id, then document name, bytewise.
  virtual Status Documents(const std::function<Status(SnapshotDocument&)>& visit) const = 0;
  // By twin id, document name, watcher.
  virtual Status Watches(const std::function<Status(WatchRecord&)>& visit) const = 0;
  // In seq order.
  virtual Status ChangeLog(const std::function<Status(Change&)>& visit) const = 0;
  virtual Status VersionIndex(const std::function<Status(VersionIndexEntry&)>& visit) const = 0;
};

// Opens the RocksDB database at `path` as a RocksDB secondary instance (its own files go to a
// temporary directory, removed when the snapshot dies) and catches up with the writer once:
// the view then stays as it was, whatever the writer does. kNotFound when `path` holds no
// database; kInternal when it is not a twins database or has an unknown schema.
Result<std::unique_ptr<StoreSnapshot>> OpenRocksDbSnapshot(const std::string& path);

}  // namespace twins
