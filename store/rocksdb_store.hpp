// The RocksDB backend opened over a file system of the caller's, for tests that cut the power
// (tests/support/power_cut_fs.hpp). Everything else opens it through document_store.hpp.
#pragma once

#include <rocksdb/env.h>

#include <memory>

#include "store/document_store.hpp"

namespace twins {

// OpenRocksDbStore(options), with every file access of RocksDB going through `env` (nullptr:
// the default one). `env` must outlive the store.
Result<std::unique_ptr<DocumentStore>> OpenRocksDbStore(const RocksDbOptions& options, rocksdb::Env* env);

}  // namespace twins
