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

// How many connections to the database at options.uri are a PostgreSQL store's, as brokers
// open them (application_name "mosquitto-twins", set by OpenPostgresStore); the caller's own
// connection for this question is not counted.
Result<uint64_t> CountPostgresStoreSessions(const PostgresOptions& options);

}  // namespace twins
