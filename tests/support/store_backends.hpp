// The engine suites run over every store backend: RocksDB in a temporary directory, and
// PostgreSQL in a fresh schema of the test binary's one server (SharedPostgres), both as the
// plain store and as the store several brokers share, where every engine call runs on a batch
// thread in a transaction (Attach).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "cluster/batch_thread.hpp"
#include "engine/engine.hpp"
#include "store/document_store.hpp"
#include "store/postgres_shared_store.hpp"
#include "store/postgres_store.hpp"
#include "tests/support/postgres.hpp"

namespace twins::test {

enum class Backend { kRocksDb, kPostgres, kPostgresBatched };

inline std::string BackendName(const testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kRocksDb    ? "RocksDB"
         : info.param == Backend::kPostgres ? "PostgreSQL"
                                            : "PostgreSQLBatched";
}

// Where one test keeps its data; Open() twice opens the same data again (a restart).
class TestStore {
 public:
  TestStore(Backend backend, std::string rocksdb_path) : backend_(backend), path_(std::move(rocksdb_path)) {
    static std::atomic<int> schemas{0};
    schema_ = "test_" + std::to_string(++schemas);
  }

  Result<std::unique_ptr<DocumentStore>> Open(uint64_t changelog_bytes = 64 << 20) const {
    if (backend_ == Backend::kRocksDb) {
      RocksDbOptions options;
      options.path = path_;
      options.changelog_bytes = changelog_bytes;
      return OpenRocksDbStore(options);
    }
    Postgres& server = SharedPostgres();
    if (!server.ok()) return Status::Internal(server.error());
    PostgresOptions options;
    options.uri = server.Uri();
    options.schema = schema_;
    options.changelog_bytes = changelog_bytes;
    if (backend_ == Backend::kPostgres) return OpenPostgresStore(options);
    auto shared = OpenSharedPostgresStore(options);
    if (!shared.ok()) return shared.status();
    shared_ = shared->get();
    return std::unique_ptr<DocumentStore>(std::move(shared).value());
  }

  // For the batched backend, the batch thread of `engine`, which was made over the store the
  // last Open() returned (nullptr for the others). It must go before the engine.
  std::unique_ptr<BatchThread> Attach(Engine& engine) const {
    if (backend_ != Backend::kPostgresBatched) return nullptr;
    auto batches = std::make_unique<BatchThread>(engine, *shared_, std::chrono::seconds(5));
    engine.SetBatchRunner(batches.get());
    batches->Start();
    return batches;
  }

  Backend backend() const { return backend_; }

  // After a writer process was killed, with no store of this process open: until the server has
  // ended what that writer had sent (a statement runs to its commit after its client is gone, so
  // a reader could otherwise see the log before it and the documents after it). Nothing to wait
  // for on RocksDB, which dies with the writer. False after 30 s.
  bool AwaitKilledWriter() const {
    if (backend_ != Backend::kPostgres) return true;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      auto left = SharedPostgres().Value(
          "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'mosquitto-twins'");
      if (left.ok() && *left == "0") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

 private:
  Backend backend_;
  std::string path_;
  std::string schema_;
  mutable SharedPostgresStore* shared_ = nullptr;
};

}  // namespace twins::test
