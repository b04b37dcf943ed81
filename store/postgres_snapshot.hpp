// The PostgreSQL store seen from outside the brokers, for mosquitto-twins-admin: a snapshot of
// its schema (export, check) and whether brokers are connected to it (import).
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.hpp"
#include "store/postgres_store.hpp"
#include "store/store_snapshot.hpp"

namespace twins {

// The schema options.schema of the database at options.uri as one REPEATABLE READ, READ ONLY
// transaction, held on a connection of its own until the snapshot dies: every visit sees the
// moment of its first read, whole Write batches only (each is one transaction), whatever the
// brokers write meanwhile. schema() is the PostgreSQL schema's version (1). Never writes, and
// never creates the schema: kNotFound when the database has no such schema; kInternal when it
// cannot be reached, or the schema is not a twins schema or has an unknown version. Messages
// never quote the URI (it may hold a password). Not thread-safe.
Result<std::unique_ptr<StoreSnapshot>> OpenPostgresSnapshot(const PostgresOptions& options);

// What an import into the schema options.schema must know beyond a snapshot of it.
struct PostgresTargetUse {
  // Connections to its database opened as PostgreSQL stores open theirs (application_name
  // "mosquitto-twins": running brokers); the caller's, renamed, are not among them.
  uint64_t store_sessions = 0;
  // The shared store (brokers with plugin_opt_store) has opened the schema: its seq counter
  // (meta "seq") is there, and goes on from its own value whatever the import's start seq.
  bool shared_seq = false;
};
Result<PostgresTargetUse> InspectPostgresTarget(const PostgresOptions& options);

}  // namespace twins
