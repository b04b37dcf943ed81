// A database as schema 1 wrote it, for the upgrade and export tests: "!schema" = "1" and
// "d" twin NUL doc -> 8-byte little-endian version, then the data (no modified time, no
// change log, no column family but the default).
#pragma once

#include <rocksdb/db.h>

#include <cstdint>
#include <memory>
#include <string>

namespace twins::test {

// True once the database at `path` holds one schema 1 document.
inline bool MakeSchema1Database(const std::string& path, const std::string& twin, const std::string& doc,
                                uint64_t version, const std::string& data) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return false;
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string value;
  for (int i = 0; i < 8; ++i) value += static_cast<char>((version >> (8 * i)) & 0xFF);
  return db->Put(rocksdb::WriteOptions(), "!schema", "1").ok() &&
         db->Put(rocksdb::WriteOptions(), "d" + twin + std::string(1, '\0') + doc, value + data).ok();
}

}  // namespace twins::test
