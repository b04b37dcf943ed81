// Persistence behind the twin engine: raw documents by (twin id, document name).
// The engine owns the rules (versions, merge, limits, locking); a store only keeps bytes.
// A second backend implements this interface; nothing above store/ sees RocksDB types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "status.hpp"

namespace twins {

struct StoredDocument {
  uint64_t version = 0;
  std::string data;  // compact JSON text of the data object
};

// Every method is safe to call from several threads at once. A write is durable once Sync()
// has returned after it: it then survives a crash of the process (and, with sync writes, of
// the machine). Writes before one Sync() share one log write (group commit).
class DocumentStore {
 public:
  virtual ~DocumentStore() = default;

  // nullopt when the document does not exist.
  virtual Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const = 0;
  virtual Status Put(std::string_view twin, std::string_view doc, const StoredDocument& document) = 0;
  virtual Status Delete(std::string_view twin, std::string_view doc) = 0;
  // Document names of one twin, sorted bytewise; empty for an unknown twin.
  virtual Result<std::vector<std::string>> List(std::string_view twin) const = 0;
  // Deletes every document of one twin atomically.
  virtual Status DeleteAll(std::string_view twin) = 0;
  // Makes every write that returned before it durable.
  virtual Status Sync() = 0;
};

struct RocksDbOptions {
  std::string path;
  bool sync_writes = false;              // fsync the WAL on every write (power-loss durability)
  size_t block_cache_bytes = 32 << 20;   // bounds RocksDB's memory (reads and write buffers) whatever the number of twins
};

// Opens (creating if missing) a RocksDB database. Refuses one written with an unknown schema.
Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options);

}  // namespace twins
