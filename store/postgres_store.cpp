#include "store/postgres_store.hpp"

#include "store/postgres_sql.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <utility>
#include <vector>

namespace twins {
namespace {

// Schema 1, in options.schema (every name below is qualified with it):
//   meta (key, value): ("schema_version", "1"); ("changelog_after", seq) after an import.
//   documents (twin, doc) -> version, modified_ms, data (the JSON text, byte for byte).
//   changes seq -> one change-log entry; `bytes` is its size as the retention counts it.
//   changes_version: the version index, (twin, doc, version) of puts and patches.
//   watches (twin, doc, watcher) -> value.
// Names are compared bytewise (COLLATE "C"), so List and ListWatches sort as RocksDB does.

constexpr auto kReconnectInterval = std::chrono::milliseconds(250);
constexpr size_t kTrimBatch = 4096;

class PostgresStore final : public DocumentStore {
 public:
  PostgresStore(PgConn conn, const PostgresOptions& options)
      : options_(options), conn_(std::move(conn)), q_("\"" + options.schema + "\".") {}

  // At open, with the connection new: where the change log starts and ends, and its size.
  Status LoadChangeLog() {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query(
        "SELECT coalesce(min(seq), 1), coalesce(max(seq), 0), coalesce(sum(bytes), 0), count(*),"
        " coalesce((SELECT value FROM " +
            q_ + "meta WHERE key = 'changelog_after'), '0') FROM " + q_ + "changes",
        {});
    if (!result.ok()) return result.status();
    std::lock_guard<std::mutex> log_lock(log_mutex_);
    oldest_seq_ = ToU64(result->get(), 0, 0);
    newest_seq_ = ToU64(result->get(), 0, 1);
    changelog_bytes_ = ToU64(result->get(), 0, 2);
    const uint64_t after = ToU64(result->get(), 0, 4);
    if (after > newest_seq_) {
      newest_seq_ = after;
      if (ToU64(result->get(), 0, 3) == 0) oldest_seq_ = after + 1;
    }
    return Status::Ok();
  }

  // Kept in meta ("changelog_after"), read at open. The database says whether the log never had
  // an entry (none now, since the newest is always kept, and no start seq set before).
  Status StartChangeLogAfter(uint64_t seq) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto result = Query("INSERT INTO " + q_ +
                              "meta (key, value) SELECT 'changelog_after', $1 WHERE NOT EXISTS (SELECT 1 FROM " + q_ +
                              "changes) ON CONFLICT (key) DO NOTHING RETURNING 1",
                          {BigInt(seq)});
      if (!result.ok()) return result.status();
      if (PQntuples(result->get()) == 0) return Status::Internal("the change log has entries already");
    }
    std::lock_guard<std::mutex> lock(log_mutex_);
    newest_seq_ = seq;
    oldest_seq_ = seq + 1;
    return Status::Ok();
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query("SELECT version, modified_ms, data FROM " + q_ + "documents WHERE twin = $1 AND doc = $2",
                        {std::string(twin), std::string(doc)});
    if (!result.ok()) return result.status();
    const PGresult* rows = result->get();
    if (PQntuples(rows) == 0) return std::optional<StoredDocument>();
    return std::optional<StoredDocument>(StoredDocument{ToU64(rows, 0, 0), ToString(rows, 0, 2), ToI64(rows, 0, 1)});
  }

  // One statement, so one transaction: the documents' final states (a batch may write one
  // document several times: its last write wins) and every change-log entry.
  Status Write(std::vector<DocumentWrite> writes) override {
    if (writes.empty()) return Status::Ok();
    uint64_t first_seq = 0, last_seq = 0, log_bytes = 0;
    Statement write = WriteStatement(q_, writes, &first_seq, &last_seq, &log_bytes);
    Status s = Modify(write.sql, write.params);
    if (!s.ok() || last_seq == 0) return s;
    std::lock_guard<std::mutex> lock(log_mutex_);
    if (newest_seq_ < oldest_seq_) oldest_seq_ = first_seq;
    newest_seq_ = std::max(newest_seq_, last_seq);
    changelog_bytes_ += log_bytes;
    return Status::Ok();
  }

  Result<std::vector<std::string>> List(std::string_view twin) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query("SELECT doc FROM " + q_ + "documents WHERE twin = $1 ORDER BY doc", {std::string(twin)});
    if (!result.ok()) return result.status();
    std::vector<std::string> names;
    const int rows = PQntuples(result->get());
    names.reserve(static_cast<size_t>(rows));
    for (int row = 0; row < rows; ++row) names.push_back(ToString(result->get(), row, 0));
    return names;
  }

  Status DeleteAll(std::string_view twin) override {
    return Modify("DELETE FROM " + q_ + "documents WHERE twin = $1", {std::string(twin)});
  }

  Status Sync() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_.ok()) return std::exchange(failure_, Status::Ok());
    }
    return TrimChangeLog();
  }

  Status Writable(bool /*grows*/) override {
    if (!down_.load(std::memory_order_acquire)) return Status::Ok();
    std::lock_guard<std::mutex> lock(mutex_);
    return Connect();
  }

  Result<uint64_t> CountTwins() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query("SELECT count(DISTINCT twin) FROM " + q_ + "documents", {});
    if (!result.ok()) return result.status();
    return ToU64(result->get(), 0, 0);
  }

  Result<ContentCounts> CountContents() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query("SELECT count(DISTINCT twin), count(*) FROM " + q_ + "documents", {});
    if (!result.ok()) return result.status();
    return ContentCounts{ToU64(result->get(), 0, 0), ToU64(result->get(), 0, 1)};
  }

  // The size of the schema's tables and indexes, asked of the server (no scan); 0 while it
  // cannot be reached.
  StoreStats Stats() const override {
    StoreStats stats;
    stats.write_failures = write_failures_.load(std::memory_order_relaxed);
    stats.stopped = down_.load(std::memory_order_acquire);
    if (stats.stopped) return stats;
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
        {options_.schema});
    if (result.ok()) stats.disk_bytes = ToU64(result->get(), 0, 0);
    return stats;
  }

  ChangeBounds Changes() const override {
    if (options_.shared) return ServerChanges();
    std::lock_guard<std::mutex> lock(log_mutex_);
    return {oldest_seq_, newest_seq_};
  }

  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    std::vector<Change> changes;
    if (max_count == 0) return changes;
    // At most max_count rows, fewer once max_bytes of data are read: the running total is the
    // data before each row, so the row that crosses the bound is still read (at least one).
    const std::string sql =
        "SELECT seq, time_ms, twin, doc, kind, source, origin, version, data FROM (SELECT *, "
        "coalesce(sum(octet_length(data) + 64) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED "
        "PRECEDING AND 1 PRECEDING), 0) AS before FROM (SELECT * FROM " +
        q_ + "changes WHERE seq > $1 ORDER BY seq LIMIT $2) AS next) AS counted" +
        " WHERE before < greatest($3::bigint, 1) ORDER BY seq";
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query(sql, {BigInt(after), BigInt(max_count), BigInt(max_bytes)});
    if (!result.ok()) return result.status();
    const int rows = PQntuples(result->get());
    changes.reserve(static_cast<size_t>(rows));
    for (int row = 0; row < rows; ++row) changes.push_back(ReadChange(result->get(), row));
    return changes;
  }

  Result<std::optional<Change>> FindVersion(std::string_view twin, std::string_view doc,
                                            uint64_t version) const override {
    if (version > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::optional<Change>();
    std::lock_guard<std::mutex> lock(mutex_);
    // The newest entry of that version: a document deleted and made again has the same
    // version numbers a second time.
    auto result = Query("SELECT seq, time_ms, twin, doc, kind, source, origin, version, data FROM " + q_ +
                            "changes WHERE twin = $1 AND doc = $2 AND version = $3 AND kind <> 3"
                            " ORDER BY seq DESC LIMIT 1",
                        {std::string(twin), std::string(doc), std::to_string(version)});
    if (!result.ok()) return result.status();
    if (PQntuples(result->get()) == 0) return std::optional<Change>();
    return std::optional<Change>(ReadChange(result->get(), 0));
  }

  Result<uint64_t> OldestVersion(std::string_view twin, std::string_view doc) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query(
        "SELECT coalesce(min(version), 0) FROM " + q_ + "changes WHERE twin = $1 AND doc = $2 AND kind <> 3",
        {std::string(twin), std::string(doc)});
    if (!result.ok()) return result.status();
    return ToU64(result->get(), 0, 0);
  }

  Status PutWatch(const WatchRecord& watch) override {
    return Modify("INSERT INTO " + q_ +
                      "watches (twin, doc, watcher, value) VALUES ($1, $2, $3, $4)"
                      " ON CONFLICT (twin, doc, watcher) DO UPDATE SET value = excluded.value",
                  {watch.twin, watch.doc, watch.watcher, watch.value});
  }

  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    return Modify("DELETE FROM " + q_ + "watches WHERE twin = $1 AND doc = $2 AND watcher = $3",
                  {std::string(twin), std::string(doc), std::string(watcher)});
  }

  Result<std::vector<WatchRecord>> ListWatches() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query("SELECT twin, doc, watcher, value FROM " + q_ + "watches ORDER BY twin, doc, watcher", {});
    if (!result.ok()) return result.status();
    std::vector<WatchRecord> watches;
    for (int row = 0; row < PQntuples(result->get()); ++row) {
      const PGresult* rows = result->get();
      watches.push_back(
          {ToString(rows, row, 0), ToString(rows, row, 1), ToString(rows, row, 2), ToString(rows, row, 3)});
    }
    return watches;
  }

 private:
  // The log's bounds as the server has them now; what is known here when it cannot say.
  ChangeBounds ServerChanges() const {
    std::unique_lock<std::mutex> lock(mutex_);
    auto result = Query("SELECT min(seq), greatest(coalesce(max(seq), 0), coalesce((SELECT value::bigint FROM " + q_ +
                            "meta WHERE key = 'changelog_after'), 0)) FROM " + q_ + "changes",
                        {});
    lock.unlock();
    std::lock_guard<std::mutex> log_lock(log_mutex_);
    if (result.ok()) {
      newest_seq_ = std::max(newest_seq_, ToU64(result->get(), 0, 1));
      oldest_seq_ = PQgetisnull(result->get(), 0, 0) ? newest_seq_ + 1 : ToU64(result->get(), 0, 0);
    }
    return {oldest_seq_, newest_seq_};
  }

  // A statement that changes something: a failure is counted and kept for the next Sync.
  Status Modify(const std::string& sql, const Params& params) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto result = Query(sql, params);
    if (result.ok()) return Status::Ok();
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    failure_ = result.status();
    return result.status();
  }

  // With mutex_ held: a connection that works, or why there is none. After a failed attempt,
  // the next one waits kReconnectInterval (calls meanwhile get the same error at once).
  Status Connect() const {
    if (conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK) return Status::Ok();
    const auto now = std::chrono::steady_clock::now();
    if (!down_status_.ok() && now < next_connect_) return down_status_;
    PgConn conn = OpenPgConnection(options_);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      next_connect_ = now + kReconnectInterval;
      down_status_ = Status::Internal("PostgreSQL cannot be reached: " +
                                      Redact(ErrorText(PQerrorMessage(conn.get())), options_.uri));
      MarkDown(down_status_.message());
      return down_status_;
    }
    conn_ = std::move(conn);
    down_status_ = Status::Ok();
    if (down_.exchange(false, std::memory_order_acq_rel)) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - down_since_).count();
      Log(LogLevel::kWarning, "PostgreSQL connection restored (down for " + std::to_string(ms) + " ms)");
    }
    return Status::Ok();
  }

  void MarkDown(const std::string& why) const {
    if (down_.exchange(true, std::memory_order_acq_rel)) return;
    down_since_ = std::chrono::steady_clock::now();
    Log(LogLevel::kError, why + "; calls fail until it is back");
  }

  // With mutex_ held: runs one statement, parameters in text form.
  Result<PgResult> Query(const std::string& sql, const Params& params) const {
    Status s = Connect();
    if (!s.ok()) return s;
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const std::string& param : params) values.push_back(param.c_str());
    PgResult result(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                                 nullptr, nullptr, 0));
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return result;
    if (PQstatus(conn_.get()) != CONNECTION_OK) {
      std::string message = "PostgreSQL connection lost: " + ErrorText(PQerrorMessage(conn_.get()));
      conn_.reset();
      MarkDown(message);
      return Status::Internal(message);
    }
    const char* state = PQresultErrorField(result.get(), PG_DIAG_SQLSTATE);
    return Status::Internal("PostgreSQL error" + (state == nullptr ? std::string() : std::string(" ") + state) + ": " +
                            ErrorText(PQresultErrorMessage(result.get())));
  }

  // Keeps the change log within options_.changelog_bytes: deletes the oldest entries down to
  // 90 % of it, at most kTrimBatch per call. The newest entry always stays.
  Status TrimChangeLog() {
    uint64_t from, newest, excess;
    {
      std::lock_guard<std::mutex> lock(log_mutex_);
      if (changelog_bytes_ <= options_.changelog_bytes || newest_seq_ <= oldest_seq_) return Status::Ok();
      from = oldest_seq_;
      newest = newest_seq_;
      excess = changelog_bytes_ - options_.changelog_bytes * 9 / 10;
    }
    uint64_t freed = 0, last = 0;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto result = Query("SELECT seq, bytes FROM " + q_ + "changes WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT " +
                              std::to_string(kTrimBatch),
                          {std::to_string(from), std::to_string(newest)});
      if (!result.ok()) return result.status();
      for (int row = 0; row < PQntuples(result->get()) && freed < excess; ++row) {
        last = ToU64(result->get(), row, 0);
        freed += ToU64(result->get(), row, 1);
      }
      if (last == 0) return Status::Ok();
      // The oldest moves before the entries go: a reader that misses them then finds the
      // log's oldest past them (a stream ends with overflow rather than pass over them).
      {
        std::lock_guard<std::mutex> log_lock(log_mutex_);
        oldest_seq_ = std::max(oldest_seq_, last + 1);
        changelog_bytes_ -= std::min(changelog_bytes_, freed);
      }
      auto deleted = Query("DELETE FROM " + q_ + "changes WHERE seq >= $1 AND seq <= $2",
                           {std::to_string(from), std::to_string(last)});
      if (!deleted.ok()) return deleted.status();
    }
    return Status::Ok();
  }

  void Log(LogLevel level, const std::string& message) const {
    if (options_.log) options_.log(level, message);
  }

  const PostgresOptions options_;
  // The connection and its state; guarded by mutex_ (down_ is also read without it).
  mutable std::mutex mutex_;
  mutable PgConn conn_;
  mutable Status down_status_;  // why the last attempt to connect failed
  mutable std::chrono::steady_clock::time_point next_connect_;
  mutable std::chrono::steady_clock::time_point down_since_;
  mutable std::atomic<bool> down_{false};
  Status failure_;  // the last failed write since the previous Sync
  std::atomic<uint64_t> write_failures_{0};
  const std::string q_;  // the schema, quoted, with its dot: "twins".

  // The change log's bounds and size; guarded by log_mutex_.
  mutable std::mutex log_mutex_;
  mutable uint64_t oldest_seq_ = 1;
  mutable uint64_t newest_seq_ = 0;
  uint64_t changelog_bytes_ = 0;
};

}  // namespace

Result<std::unique_ptr<DocumentStore>> OpenPostgresStore(const PostgresOptions& options) {
  if (!ValidSchemaName(options.schema)) {
    return Status::Internal("PostgreSQL schema name \"" + options.schema +
                            "\": use lower-case letters, digits and '_', not starting with a digit");
  }
  if (!options.password_file.empty() && access(options.password_file.c_str(), R_OK) != 0) {
    return Status::Internal("cannot read the PostgreSQL password file " + options.password_file);
  }
  PgConn conn = OpenPgConnection(options);
  if (conn == nullptr) return Status::Internal("cannot connect to PostgreSQL: out of memory");
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status::Internal("cannot connect to PostgreSQL: " +
                            Redact(ErrorText(PQerrorMessage(conn.get())), options.uri));
  }
  const char* encoding = PQparameterStatus(conn.get(), "server_encoding");
  if (encoding == nullptr || std::string(encoding) != "UTF8") {
    return Status::Internal(std::string("the PostgreSQL database's encoding is ") +
                            (encoding == nullptr ? "unknown" : encoding) + ", twins need UTF8");
  }
  Status s = PrepareSchema(conn.get(), options.schema);
  // Another broker may have created it meanwhile: then it is there, checked the second time.
  if (!s.ok()) s = PrepareSchema(conn.get(), options.schema);
  if (!s.ok()) return s;
  auto store = std::make_unique<PostgresStore>(std::move(conn), options);
  s = store->LoadChangeLog();
  if (!s.ok()) return s;
  return std::unique_ptr<DocumentStore>(std::move(store));
}

}  // namespace twins
