// The parts of `import` its two targets share (import.cpp: RocksDB, import_postgres.cpp:
// PostgreSQL): the input, read and checked whole, and what "empty" means for a target.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "admin/target.hpp"
#include "common/status.hpp"
#include "store/document_store.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {

struct Input {
  uint64_t seq = 0;  // the header's: the change log goes on after it
  std::vector<DocumentWrite> documents;
  std::vector<WatchRecord> watches;
};

// The whole export at `in` ("-": stdin), checked: a header first, an end line last with the
// right counts, no document or watch twice, each line by ParseLine (admin/format.hpp). A bad
// line is named by its number.
Result<Input> ReadInput(const std::string& in);

// Ok when the snapshot holds no document, watch or change-log entry (its log never had one);
// else kInvalidArgument saying what it holds, or the error that stopped the reading.
Status CheckEmpty(const StoreSnapshot& snapshot);

// The import into a PostgreSQL target (Import's contract); the exit status.
int ImportIntoPostgres(const Target& target, Input input);

}  // namespace twins::admin
