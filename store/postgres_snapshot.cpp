// OpenPostgresSnapshot: one REPEATABLE READ transaction. Its snapshot is taken by its first
// statement, so the schema checks, the log's bounds and every visit read the same moment; the
// visits read through a cursor, 256 rows at a time (16 MiB at most with the default largest
// document), so that a large schema is never held in memory whole. The tables are those of
// postgres_store.cpp (schema 1).
#include "store/postgres_snapshot.hpp"

#include <unistd.h>

#include <chrono>
#include <string>

#include "store/postgres_sql.hpp"

namespace twins {
namespace {

constexpr char kFetch[] = "FETCH 256 FROM twins_scan";

// A statement's result, or why it failed (a lost connection said as such).
Result<PgResult> Run(PGconn* conn, const std::string& sql, const Params& params = {}) {
  auto result = RunSql(conn, sql, params);
  if (result.ok()) return result;
  if (PQstatus(conn) != CONNECTION_OK) {
    return Status::Internal("PostgreSQL connection lost: " + ErrorText(PQerrorMessage(conn)));
  }
  return Status::Internal("PostgreSQL error: " + result.status().message());
}

// The store's connection (postgres_sql.cpp), named apart: a broker counting the stores'
// connections does not count the admin's.
Result<PgConn> Connect(const PostgresOptions& options) {
  if (!options.password_file.empty() && access(options.password_file.c_str(), R_OK) != 0) {
    return Status::Internal("cannot read the PostgreSQL password file " + options.password_file);
  }
  auto conn = PgConnect(ConnectOptions(options), PgDeadline::After(std::chrono::milliseconds(options.timeout_ms)));
  if (!conn.ok()) return Status::Internal("cannot connect to PostgreSQL: " + conn.status().message());
  // Connected within the timeout; then blocking, as RunSql needs: the admin waits for the server.
  if (PQsetnonblocking(conn->get(), 0) != 0) return Status::Internal("cannot use the PostgreSQL connection");
  auto named = Run(conn->get(), "SET application_name = 'mosquitto-twins-admin'");
  if (!named.ok()) return named.status();
  return std::move(conn).value();
}

class PostgresSnapshot final : public StoreSnapshot {
 public:
  PostgresSnapshot(PgConn conn, std::string schema)
      : conn_(std::move(conn)), schema_(std::move(schema)), q_("\"" + schema_ + "\".") {}

  // Begins the transaction and reads, in its snapshot, the schema's version and the log's
  // bounds: its newest seq is the greatest of the log's, the start seq an import left, and
  // the shared store's counter (meta "seq", postgres_shared_store.cpp).
  Status Load() {
    auto begun = Run(conn_.get(), "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    if (!begun.ok()) return begun.status();
    auto found = Run(conn_.get(),
                     "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), to_regclass($2) IS NOT NULL",
                     {schema_, q_ + "meta"});
    if (!found.ok()) return found.status();
    if (PQgetvalue(found->get(), 0, 0)[0] != 't') {
      return Status::NotFound("the PostgreSQL database has no schema " + schema_ + " (no twins stored there)");
    }
    const std::string not_twins = "schema " + schema_ + " holds no twins schema version: not a twins schema";
    if (PQgetvalue(found->get(), 0, 1)[0] != 't') return Status::Internal(not_twins);
    auto version = Run(conn_.get(), "SELECT value FROM " + q_ + "meta WHERE key = 'schema_version'");
    if (!version.ok()) return version.status();
    if (PQntuples(version->get()) == 0) return Status::Internal(not_twins);
    if (ToString(version->get(), 0, 0) != kPostgresSchemaVersion) {
      return Status::Internal("schema " + schema_ + " has twins schema version " + ToString(version->get(), 0, 0) +
                              ", this build reads only " + kPostgresSchemaVersion);
    }
    auto bounds = Run(
        conn_.get(),
        "SELECT coalesce(min(seq), 1), coalesce(max(seq), 0), count(*), greatest((SELECT value::bigint FROM " + q_ +
            "meta WHERE key = 'changelog_after'), (SELECT value::bigint FROM " + q_ +
            "meta WHERE key = 'seq'), 0) FROM " + q_ + "changes");
    if (!bounds.ok()) return bounds.status();
    bounds_ = {ToU64(bounds->get(), 0, 0), ToU64(bounds->get(), 0, 1)};
    const uint64_t after = ToU64(bounds->get(), 0, 3);
    if (after > bounds_.newest) {
      bounds_.newest = after;
      if (ToU64(bounds->get(), 0, 2) == 0) bounds_.oldest = after + 1;
    }
    return Status::Ok();
  }

  int schema() const override { return 1; }
  ChangeBounds changes() const override { return bounds_; }

  Status Documents(const std::function<Status(SnapshotDocument&)>& visit) const override {
    return Scan("SELECT twin, doc, version, modified_ms, data FROM " + q_ + "documents ORDER BY twin, doc",
                [&](const PGresult* rows, int row) {
                  SnapshotDocument document;
                  document.twin = ToString(rows, row, 0);
                  document.doc = ToString(rows, row, 1);
                  document.document.version = ToU64(rows, row, 2);
                  document.document.modified_ms = ToI64(rows, row, 3);
                  document.document.data = ToString(rows, row, 4);
                  return visit(document);
                });
  }

  Status Watches(const std::function<Status(WatchRecord&)>& visit) const override {
    return Scan("SELECT twin, doc, watcher, value FROM " + q_ + "watches ORDER BY twin, doc, watcher",
                [&](const PGresult* rows, int row) {
                  WatchRecord watch{ToString(rows, row, 0), ToString(rows, row, 1), ToString(rows, row, 2),
                                    ToString(rows, row, 3)};
                  return visit(watch);
                });
  }

  Status ChangeLog(const std::function<Status(Change&)>& visit) const override {
    return Scan(std::string("SELECT ") + kChangeColumns + " FROM " + q_ + "changes ORDER BY seq",
                [&](const PGresult* rows, int row) {
                  Change change = ReadChange(rows, row);
                  return visit(change);
                });
  }

  // PostgreSQL keeps the version index (changes_version) itself: its entries are the rows of
  // the puts and patches. A document deleted and made again has two entries per version.
  Status VersionIndex(const std::function<Status(VersionIndexEntry&)>& visit) const override {
    return Scan(
        "SELECT twin, doc, version, seq FROM " + q_ + "changes WHERE kind <> 3 ORDER BY twin, doc, version, seq",
        [&](const PGresult* rows, int row) {
          VersionIndexEntry entry{ToString(rows, row, 0), ToString(rows, row, 1), ToU64(rows, row, 2),
                                  ToU64(rows, row, 3)};
          return visit(entry);
        });
  }

 private:
  // Visits every row of `select` in order, through a cursor.
  template <class Visit>
  Status Scan(const std::string& select, Visit visit) const {
    auto declared = Run(conn_.get(), "DECLARE twins_scan NO SCROLL CURSOR FOR " + select);
    if (!declared.ok()) return declared.status();
    for (;;) {
      auto rows = Run(conn_.get(), kFetch);
      if (!rows.ok()) return rows.status();
      const int count = PQntuples(rows->get());
      if (count == 0) break;
      for (int row = 0; row < count; ++row) {
        Status s = visit(rows->get(), row);
        if (!s.ok()) {
          (void)Run(conn_.get(), "CLOSE twins_scan");
          return s;
        }
      }
    }
    auto closed = Run(conn_.get(), "CLOSE twins_scan");
    return closed.ok() ? Status::Ok() : closed.status();
  }

  PgConn conn_;
  const std::string schema_;
  const std::string q_;  // the schema, quoted, with its dot
  ChangeBounds bounds_;
};

}  // namespace

Result<std::unique_ptr<StoreSnapshot>> OpenPostgresSnapshot(const PostgresOptions& options) {
  if (!ValidSchemaName(options.schema)) {
    return Status::Internal("PostgreSQL schema name \"" + options.schema +
                            "\": use lower-case letters, digits and '_', not starting with a digit");
  }
  auto conn = Connect(options);
  if (!conn.ok()) return conn.status();
  auto snapshot = std::make_unique<PostgresSnapshot>(std::move(conn).value(), options.schema);
  Status s = snapshot->Load();
  if (!s.ok()) return s;
  return std::unique_ptr<StoreSnapshot>(std::move(snapshot));
}

Result<PostgresTargetUse> InspectPostgresTarget(const PostgresOptions& options) {
  if (!ValidSchemaName(options.schema)) {
    return Status::Internal("PostgreSQL schema name \"" + options.schema +
                            "\": use lower-case letters, digits and '_', not starting with a digit");
  }
  auto conn = Connect(options);
  if (!conn.ok()) return conn.status();
  const std::string q = "\"" + options.schema + "\".";
  // Other roles' application_name is visible to every role (pg_stat_activity hides their
  // queries, not their names).
  auto found = Run(conn->get(),
                   "SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND application_name = 'mosquitto-twins'), to_regclass($1) IS NOT NULL",
                   {q + "meta"});
  if (!found.ok()) return found.status();
  PostgresTargetUse use;
  use.store_sessions = ToU64(found->get(), 0, 0);
  if (PQgetvalue(found->get(), 0, 1)[0] == 't') {
    auto seq = Run(conn->get(), "SELECT EXISTS (SELECT 1 FROM " + q + "meta WHERE key = 'seq')");
    if (!seq.ok()) return seq.status();
    use.shared_seq = PQgetvalue(seq->get(), 0, 0)[0] == 't';
  }
  return use;
}

}  // namespace twins
