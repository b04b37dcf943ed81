#include "store/postgres_sql.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <utility>

namespace twins {

bool ValidSchemaName(const std::string& name) {
  if (name.empty() || name.size() > 63 || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; });
}

void ArrayLiteral::Add(std::string_view value) {
  text_ += text_.empty() ? "{\"" : ",\"";
  for (char c : value) {
    if (c == '"' || c == '\\') text_ += '\\';
    text_ += c;
  }
  text_ += '"';
}

uint64_t ToU64(const PGresult* result, int row, int column) {
  return std::strtoull(PQgetvalue(result, row, column), nullptr, 10);
}

int64_t ToI64(const PGresult* result, int row, int column) {
  return std::strtoll(PQgetvalue(result, row, column), nullptr, 10);
}

std::string ToString(const PGresult* result, int row, int column) {
  return std::string(PQgetvalue(result, row, column), static_cast<size_t>(PQgetlength(result, row, column)));
}

uint64_t EntryBytes(const Change& change) {
  return 9 + 33 + change.twin.size() + change.doc.size() + change.source.size() + change.origin.size() +
         change.data.size();
}

std::string BigInt(uint64_t value) {
  return std::to_string(std::min<uint64_t>(value, std::numeric_limits<int64_t>::max()));
}

PgConnectOptions ConnectOptions(const PostgresOptions& options) {
  return {options.uri, options.password_file, std::chrono::milliseconds(options.timeout_ms)};
}

Change ReadChange(const PGresult* rows, int row) {
  Change change;
  change.seq = ToU64(rows, row, 0);
  change.time_ms = ToI64(rows, row, 1);
  change.twin = ToString(rows, row, 2);
  change.doc = ToString(rows, row, 3);
  change.kind = static_cast<ChangeKind>(ToU64(rows, row, 4));
  change.source = ToString(rows, row, 5);
  change.origin = ToString(rows, row, 6);
  change.version = ToU64(rows, row, 7);
  change.data = ToString(rows, row, 8);
  return change;
}

Result<PgResult> RunSql(PGconn* conn, const std::string& sql, const Params& params) {
  std::vector<const char*> values;
  for (const std::string& param : params) values.push_back(param.c_str());
  PgResult result(
      PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr, nullptr, 0));
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return result;
  return Status::Internal(ErrorText(PQresultErrorMessage(result.get())));
}

Status PrepareSchema(PgConn& conn, const std::string& schema, const PgDeadline& deadline) {
  const std::string q = "\"" + schema + "\".";
  auto found = PgExec(conn,
                      "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),"
                      " to_regclass($2) IS NOT NULL,"
                      " (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                      "  WHERE n.nspname = $1)",
                      {schema, q + "meta"}, deadline);
  if (!found.ok()) return Status::Internal("cannot read the schemas of the database: " + found.status().message());
  const bool schema_exists = PQgetvalue(found->get(), 0, 0)[0] == 't';
  const bool meta_exists = PQgetvalue(found->get(), 0, 1)[0] == 't';
  const uint64_t relations = ToU64(found->get(), 0, 2);
  if (meta_exists) {
    auto version = PgExec(conn, "SELECT value FROM " + q + "meta WHERE key = 'schema_version'", {}, deadline);
    if (!version.ok()) return Status::Internal("cannot read the twins schema version: " + version.status().message());
    if (PQntuples(version->get()) == 0) {
      return Status::Internal("schema " + schema + " has no twins schema version: not a twins schema");
    }
    const std::string found_version = ToString(version->get(), 0, 0);
    if (found_version != kPostgresSchemaVersion) {
      return Status::Internal("schema " + schema + " has twins schema version " + found_version +
                              ", this build reads only " + kPostgresSchemaVersion);
    }
    return Status::Ok();
  }
  if (relations > 0) {
    return Status::Internal("schema " + schema + " holds tables but no twins schema version: not a twins schema");
  }
  // One simple query: one transaction, so a failure leaves nothing half made. CREATE SCHEMA
  // needs the CREATE privilege on the database: only asked for when the schema is missing.
  std::string sql = "BEGIN;";
  if (!schema_exists) sql += "CREATE SCHEMA \"" + schema + "\";";
  sql += "CREATE TABLE " + q + "meta (key text COLLATE \"C\" PRIMARY KEY, value text NOT NULL);";
  sql += "CREATE TABLE " + q +
         "documents (twin text COLLATE \"C\" NOT NULL, doc text COLLATE \"C\" NOT NULL,"
         " version bigint NOT NULL, modified_ms bigint NOT NULL, data text NOT NULL, PRIMARY KEY (twin, doc));";
  sql += "CREATE TABLE " + q +
         "changes (seq bigint PRIMARY KEY, time_ms bigint NOT NULL, twin text COLLATE \"C\" NOT NULL,"
         " doc text COLLATE \"C\" NOT NULL, kind smallint NOT NULL, source text NOT NULL, origin text NOT NULL,"
         " version bigint NOT NULL, data text NOT NULL, bytes bigint NOT NULL);";
  sql += "CREATE INDEX changes_version ON " + q + "changes (twin, doc, version) WHERE kind <> 3;";
  sql += "CREATE TABLE " + q +
         "watches (twin text COLLATE \"C\" NOT NULL, doc text COLLATE \"C\" NOT NULL,"
         " watcher text COLLATE \"C\" NOT NULL, value text NOT NULL, PRIMARY KEY (twin, doc, watcher));";
  sql += "INSERT INTO " + q + "meta VALUES ('schema_version', '" + kPostgresSchemaVersion + "');";
  sql += "COMMIT;";
  auto created = PgExec(conn, sql, {}, deadline);
  if (!created.ok()) {
    if (conn != nullptr) (void)PgExec(conn, "ROLLBACK", {}, deadline);
    return Status::Internal("cannot create the twins schema " + schema + ": " + created.status().message());
  }
  return Status::Ok();
}

Statement WriteStatement(const std::string& q, const std::vector<DocumentWrite>& writes, uint64_t* first_seq,
                         uint64_t* last_seq, uint64_t* log_bytes) {
  std::map<std::pair<std::string_view, std::string_view>, const DocumentWrite*> last;
  for (const DocumentWrite& write : writes) last[{write.twin, write.doc}] = &write;
  ArrayLiteral put_twins, put_docs, put_versions, put_times, put_data, del_twins, del_docs;
  for (const auto& [key, write] : last) {
    if (write->document) {
      put_twins.Add(write->twin);
      put_docs.Add(write->doc);
      put_versions.Add(write->document->version);
      put_times.Add(write->document->modified_ms);
      put_data.Add(write->document->data);
    } else {
      del_twins.Add(write->twin);
      del_docs.Add(write->doc);
    }
  }
  ArrayLiteral seqs, times, twins, docs, kinds, sources, origins, versions, data, sizes;
  for (const DocumentWrite& write : writes) {
    if (!write.change) continue;
    const Change& change = *write.change;
    seqs.Add(change.seq);
    times.Add(change.time_ms);
    twins.Add(change.twin);
    docs.Add(change.doc);
    kinds.Add(static_cast<int64_t>(change.kind));
    sources.Add(change.source);
    origins.Add(change.origin);
    versions.Add(change.version);
    data.Add(change.data);
    sizes.Add(EntryBytes(change));
    if (*first_seq == 0) *first_seq = change.seq;
    *last_seq = change.seq;
    *log_bytes += EntryBytes(change);
  }
  std::string sql =
      "WITH put AS (INSERT INTO " + q +
      "documents (twin, doc, version, modified_ms, data)"
      " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[])"
      " ON CONFLICT (twin, doc) DO UPDATE SET version = excluded.version, modified_ms = excluded.modified_ms,"
      " data = excluded.data),"
      " del AS (DELETE FROM " +
      q +
      "documents d USING unnest($6::text[], $7::text[]) AS gone (twin, doc)"
      " WHERE d.twin = gone.twin AND d.doc = gone.doc),"
      " log AS (INSERT INTO " +
      q +
      "changes (seq, time_ms, twin, doc, kind, source, origin, version, data, bytes)"
      " SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::text[], $11::text[], $12::smallint[], $13::text[],"
      " $14::text[], $15::bigint[], $16::text[], $17::bigint[]))"
      " SELECT 1";
  return {std::move(sql),
          {put_twins.Finish(), put_docs.Finish(), put_versions.Finish(), put_times.Finish(), put_data.Finish(),
           del_twins.Finish(), del_docs.Finish(), seqs.Finish(), times.Finish(), twins.Finish(), docs.Finish(),
           kinds.Finish(), sources.Finish(), origins.Finish(), versions.Finish(), data.Finish(), sizes.Finish()}};
}

}  // namespace twins
