// What the PostgreSQL stores share: the schema, parameter and row conversions, and the
// statement that writes a batch of documents with their change-log entries (libpq handles and
// bounded waits: postgres_connection.hpp).
// Private to store/.
//
// Schema 1, in options.schema (every name is qualified with it):
//   meta (key, value): ("schema_version", "1"); ("changelog_after", seq) after an import;
//     for the shared store ("seq", the newest seq given out; "log_bytes", the log's size).
//   documents (twin, doc) -> version, modified_ms, data (the JSON text, byte for byte).
//   changes seq -> one change-log entry; `bytes` is its size as the retention counts it.
//   changes_version: the version index, (twin, doc, version) of puts and patches.
//   watches (twin, doc, watcher) -> value.
// Names are compared bytewise (COLLATE "C"), so List and ListWatches sort as RocksDB does.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"
#include "store/document_store.hpp"
#include "store/postgres_connection.hpp"
#include "store/postgres_store.hpp"

namespace twins {

inline constexpr char kPostgresSchemaVersion[] = "1";

using Params = std::vector<std::string>;

bool ValidSchemaName(const std::string& name);

// A text array literal, {"a","b"}, for unnest($n::text[]) and unnest($n::bigint[]).
class ArrayLiteral {
 public:
  void Add(std::string_view value);
  void Add(int64_t value) { Add(std::to_string(value)); }
  void Add(uint64_t value) { Add(std::to_string(value)); }
  std::string Finish() const { return text_.empty() ? "{}" : text_ + "}"; }

 private:
  std::string text_;
};

uint64_t ToU64(const PGresult* result, int row, int column);
int64_t ToI64(const PGresult* result, int row, int column);
std::string ToString(const PGresult* result, int row, int column);
// A bigint parameter: numbers past its range (SIZE_MAX for "no limit") become its largest.
std::string BigInt(uint64_t value);
// Its size as the retention counts it: as RocksDB's key and encoded entry.
uint64_t EntryBytes(const Change& change);
// The columns of kChangeColumns, from `row`.
inline constexpr char kChangeColumns[] = "seq, time_ms, twin, doc, kind, source, origin, version, data";
Change ReadChange(const PGresult* rows, int row);

// What PgConnect needs of `options`.
PgConnectOptions ConnectOptions(const PostgresOptions& options);
// Runs one statement, parameters in text form, on a blocking connection, waiting as long as the
// server takes (the admin command's snapshot): its result, or libpq's error.
Result<PgResult> RunSql(PGconn* conn, const std::string& sql, const Params& params = {});
// Creates the schema if it is missing; checks its version otherwise; by the deadline.
Status PrepareSchema(PgConn& conn, const std::string& schema, const PgDeadline& deadline);

struct Statement {
  std::string sql;
  Params params;
};
// One statement writing `writes` (documents' final states: a batch may write one document
// several times, its last write wins) and their change-log entries, all or none. `q` is the
// quoted schema with its dot. Adds the entries' sizes to *log_bytes and sets *last_seq.
Statement WriteStatement(const std::string& q, const std::vector<DocumentWrite>& writes, uint64_t* first_seq,
                         uint64_t* last_seq, uint64_t* log_bytes);

}  // namespace twins
