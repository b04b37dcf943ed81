// The PostgreSQL backend of DocumentStore, over libpq: what several brokers will share (issue 16).
// Not used by the plugin yet (docs/postgresql.md says what is missing).
//
// The store keeps everything in one schema of its own (options.schema, "twins" by default),
// created on first open, with its version in a meta row: an unknown version is refused. The
// role needs only to own that schema (or, for the first open, to be allowed to create it).
//
// Every Write is one transaction, committed before it returns: durable at commit, as the
// server's synchronous_commit says. Sync() therefore writes nothing; it trims the change log
// and reports a write that failed since the previous Sync (its changes may be lost).
//
// Thread-safety: every method may be called from several threads; they share one connection
// under a mutex, so calls go to the server one at a time. A lost connection fails the call
// that found it with a clear error; later calls connect again (at most every 250 ms while the
// server cannot be reached), no reopen needed. Writable() reports a connection that is down.
//
// Bounded time: no call takes longer than options.timeout_ms, waiting for the connection
// (another call's turn) included, whether the server refuses connections, stops answering
// (SIGSTOP, a network that drops packets) or is slow. A call that runs out of time fails with
// "PostgreSQL at host:port did not answer within 5 s" and closes the connection; a write that
// fails so may or may not be committed (the server may still run it once it answers again).
// With a multi-host URI (postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write) the
// store reconnects to whichever host is the primary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "common/log.hpp"
#include "common/status.hpp"
#include "store/document_store.hpp"

namespace twins {

struct PostgresOptions {
  std::string uri;               // a libpq connection URI (postgresql://user@host:port/db) or key=value string
  std::string password_file;     // libpq's passfile (mode 0600); empty: PGPASSFILE or ~/.pgpass
  std::string schema = "twins";  // lower-case letters, digits and '_', not starting with a digit
  // The change log keeps its newest entries within about this many bytes (as RocksDbOptions).
  uint64_t changelog_bytes = 64 << 20;
  LogFn log;  // lost and regained connections; none when empty
  // Other processes write the same schema (several brokers): Changes() asks the server
  // instead of keeping the log's bounds in memory.
  bool shared = false;
  // The longest a call of this store, or a round trip of a batch of the shared store
  // (postgres_shared_store.hpp), waits for the server, connecting included; at least 1. The
  // session's statement_timeout is 90 % of it (postgres_connection.hpp).
  int timeout_ms = 5000;
};

// Connects, creates the schema if it is missing, and refuses a schema of an unknown version,
// a schema holding other tables, and a database whose encoding is not UTF8 (documents are
// kept as text, byte for byte).
Result<std::unique_ptr<DocumentStore>> OpenPostgresStore(const PostgresOptions& options);

}  // namespace twins
