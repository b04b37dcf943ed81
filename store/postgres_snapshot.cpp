// OpenPostgresSnapshot: one REPEATABLE READ transaction. Its snapshot is taken by its first
// statement, so the schema checks, the log's bounds and every visit read the same moment; the
// visits read through a cursor, 256 rows at a time (16 MiB at most with the default largest
// document), so that a large schema is never held in memory whole. The tables are those of
// postgres_store.cpp (schema 1).
#include "store/postgres_snapshot.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

namespace twins {
namespace {

constexpr char kSchemaVersion[] = "1";
constexpr char kFetch[] = "FETCH 256 FROM twins_scan";

struct ResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;
struct ConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, ConnDeleter>;

// libpq's message on one line, without the URI it may quote (with its password).
std::string Message(const char* text, const std::string& uri) {
  std::string message = text == nullptr ? "" : text;
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  std::replace(message.begin(), message.end(), '\n', ' ');
  for (size_t at = uri.empty() ? std::string::npos : message.find(uri); at != std::string::npos;
       at = message.find(uri, at)) {
    message.replace(at, uri.size(), "<the connection URI>");
  }
  return message.empty() ? "unknown error" : message;
}

// The same connection parameters as the store's (postgres_store.cpp), under another name: a
// broker counting the stores' connections does not count this one.
Result<PgConn> Connect(const PostgresOptions& options) {
  if (!options.password_file.empty() && access(options.password_file.c_str(), R_OK) != 0) {
    return Status::Internal("cannot read the PostgreSQL password file " + options.password_file);
  }
  const std::string timeout = std::to_string(options.connect_timeout_s);
  std::vector<const char*> keys = {"connect_timeout", "application_name", "dbname", "client_encoding"};
  std::vector<const char*> values = {timeout.c_str(), "mosquitto-twins-admin", options.uri.c_str(), "UTF8"};
  if (!options.password_file.empty()) {
    keys.push_back("passfile");
    values.push_back(options.password_file.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConn conn(PQconnectdbParams(keys.data(), values.data(), 1));
  if (conn == nullptr) return Status::Internal("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status::Internal("cannot connect to PostgreSQL: " + Message(PQerrorMessage(conn.get()), options.uri));
  }
  return conn;
}

Result<PgResult> Run(PGconn* conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& param : params) values.push_back(param.c_str());
  PgResult result(
      PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return result;
  if (PQstatus(conn) != CONNECTION_OK) {
    return Status::Internal("PostgreSQL connection lost: " + Message(PQerrorMessage(conn), ""));
  }
  return Status::Internal("PostgreSQL error: " + Message(PQresultErrorMessage(result.get()), ""));
}

uint64_t U64(const PGresult* rows, int row, int column) {
  return std::strtoull(PQgetvalue(rows, row, column), nullptr, 10);
}

std::string Text(const PGresult* rows, int row, int column) {
  return std::string(PQgetvalue(rows, row, column), static_cast<size_t>(PQgetlength(rows, row, column)));
}

class PostgresSnapshot final : public StoreSnapshot {
 public:
  PostgresSnapshot(PgConn conn, std::string schema)
      : conn_(std::move(conn)), schema_(std::move(schema)), q_("\"" + schema_ + "\".") {}

  // Begins the transaction and reads, in its snapshot, the schema's version and the log's
  // bounds as the store reads them at open (the start seq an import left in meta included).
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
    if (Text(version->get(), 0, 0) != kSchemaVersion) {
      return Status::Internal("schema " + schema_ + " has twins schema version " + Text(version->get(), 0, 0) +
                              ", this build reads only " + kSchemaVersion);
    }
    auto bounds = Run(conn_.get(),
                      "SELECT coalesce(min(seq), 1), coalesce(max(seq), 0), count(*),"
                      " coalesce((SELECT value FROM " +
                          q_ + "meta WHERE key = 'changelog_after'), '0') FROM " + q_ + "changes");
    if (!bounds.ok()) return bounds.status();
    bounds_ = {U64(bounds->get(), 0, 0), U64(bounds->get(), 0, 1)};
    const uint64_t after = U64(bounds->get(), 0, 3);
    if (after > bounds_.newest) {
      bounds_.newest = after;
      if (U64(bounds->get(), 0, 2) == 0) bounds_.oldest = after + 1;
    }
    return Status::Ok();
  }

  int schema() const override { return 1; }
  ChangeBounds changes() const override { return bounds_; }

  Status Documents(const std::function<Status(SnapshotDocument&)>& visit) const override {
    return Scan("SELECT twin, doc, version, modified_ms, data FROM " + q_ + "documents ORDER BY twin, doc",
                [&](const PGresult* rows, int row) {
                  SnapshotDocument document;
                  document.twin = Text(rows, row, 0);
                  document.doc = Text(rows, row, 1);
                  document.document.version = U64(rows, row, 2);
                  document.document.modified_ms = std::strtoll(PQgetvalue(rows, row, 3), nullptr, 10);
                  document.document.data = Text(rows, row, 4);
                  return visit(document);
                });
  }

  Status Watches(const std::function<Status(WatchRecord&)>& visit) const override {
    return Scan("SELECT twin, doc, watcher, value FROM " + q_ + "watches ORDER BY twin, doc, watcher",
                [&](const PGresult* rows, int row) {
                  WatchRecord watch{Text(rows, row, 0), Text(rows, row, 1), Text(rows, row, 2), Text(rows, row, 3)};
                  return visit(watch);
                });
  }

  Status ChangeLog(const std::function<Status(Change&)>& visit) const override {
    return Scan(
        "SELECT seq, time_ms, twin, doc, kind, source, origin, version, data FROM " + q_ + "changes ORDER BY seq",
        [&](const PGresult* rows, int row) {
          Change change;
          change.seq = U64(rows, row, 0);
          change.time_ms = std::strtoll(PQgetvalue(rows, row, 1), nullptr, 10);
          change.twin = Text(rows, row, 2);
          change.doc = Text(rows, row, 3);
          change.kind = static_cast<ChangeKind>(U64(rows, row, 4));
          change.source = Text(rows, row, 5);
          change.origin = Text(rows, row, 6);
          change.version = U64(rows, row, 7);
          change.data = Text(rows, row, 8);
          return visit(change);
        });
  }

  // PostgreSQL keeps the version index (changes_version) itself: its entries are the rows of
  // the puts and patches. A document deleted and made again has two entries per version.
  Status VersionIndex(const std::function<Status(VersionIndexEntry&)>& visit) const override {
    return Scan(
        "SELECT twin, doc, version, seq FROM " + q_ + "changes WHERE kind <> 3 ORDER BY twin, doc, version, seq",
        [&](const PGresult* rows, int row) {
          VersionIndexEntry entry{Text(rows, row, 0), Text(rows, row, 1), U64(rows, row, 2), U64(rows, row, 3)};
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

// As the store checks it: the name goes into the SQL text.
bool ValidSchemaName(const std::string& name) {
  if (name.empty() || name.size() > 63 || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

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

Result<uint64_t> CountPostgresStoreSessions(const PostgresOptions& options) {
  auto conn = Connect(options);
  if (!conn.ok()) return conn.status();
  // Other roles' application_name is visible to every role (pg_stat_activity hides their
  // queries, not their names).
  auto found = Run(conn->get(),
                   "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                   " AND application_name = 'mosquitto-twins' AND pid <> pg_backend_pid()");
  if (!found.ok()) return found.status();
  return U64(found->get(), 0, 0);
}

}  // namespace twins
