// What a command of mosquitto-twins-admin reads or writes (--db): a RocksDB directory, or a
// PostgreSQL database given as a libpq URI (postgresql://… or postgres://…) whose schema
// (`twins` unless --schema says otherwise, as plugin_opt_store_schema) holds the twins.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "store/postgres_store.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {

struct Target {
  std::string db;             // the directory, or the URI
  std::string password_file;  // PostgreSQL only (libpq's passfile); empty: PGPASSFILE or ~/.pgpass
  std::string schema;         // PostgreSQL only; empty: the store's default

  bool postgres() const;
  // The store's options for a PostgreSQL target.
  PostgresOptions postgres_options() const;
  // For messages, never quoting a URI (it may hold a password): "the database at DIR",
  // "the PostgreSQL schema twins".
  std::string name() const;
};

bool IsPostgresUri(std::string_view db);

// A snapshot of the target: OpenRocksDbSnapshot or OpenPostgresSnapshot (kNotFound: no
// database, no schema).
Result<std::unique_ptr<StoreSnapshot>> OpenSnapshot(const Target& target);

}  // namespace twins::admin
