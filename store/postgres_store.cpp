#include "store/postgres_store.hpp"

#include "store/postgres_sql.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
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

// What std::timed_mutex does, waiting on a condition variable: std::timed_mutex waits on the
// steady clock with pthread_mutex_clocklock, which ThreadSanitizer (GCC 12's) does not see, so
// it reported races on everything the mutex guards.
class TimedMutex {
 public:
  bool try_lock_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!unlocked_.wait_until(lock, deadline, [this] { return !locked_; })) return false;
    locked_ = true;
    return true;
  }
  void unlock() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      locked_ = false;
    }
    unlocked_.notify_one();
  }

 private:
  std::mutex mutex_;
  std::condition_variable unlocked_;
  bool locked_ = false;
};

class PostgresStore final : public DocumentStore {
 public:
  PostgresStore(PgConn conn, const PostgresOptions& options)
      : options_(options), conn_(std::move(conn)), q_("\"" + options.schema + "\".") {}

  // At open, with the connection new: where the change log starts and ends, and its size.
  Status LoadChangeLog() {
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
      std::lock_guard<std::mutex> lock(failure_mutex_);
      if (!failure_.ok()) return std::exchange(failure_, Status::Ok());
    }
    return TrimChangeLog();
  }

  Status Writable(bool /*grows*/) override {
    if (!down_.load(std::memory_order_acquire)) return Status::Ok();
    const auto deadline = Deadline();
    std::unique_lock<TimedMutex> lock(mutex_, deadline.at);
    if (!lock.owns_lock()) return Busy(deadline);
    return Connect(deadline);
  }

  Result<uint64_t> CountTwins() const override {
    auto result = Query("SELECT count(DISTINCT twin) FROM " + q_ + "documents", {});
    if (!result.ok()) return result.status();
    return ToU64(result->get(), 0, 0);
  }

  Result<ContentCounts> CountContents() const override {
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
    auto result = Query("SELECT min(seq), greatest(coalesce(max(seq), 0), coalesce((SELECT value::bigint FROM " + q_ +
                            "meta WHERE key = 'changelog_after'), 0)) FROM " + q_ + "changes",
                        {});
    std::lock_guard<std::mutex> log_lock(log_mutex_);
    if (result.ok()) {
      newest_seq_ = std::max(newest_seq_, ToU64(result->get(), 0, 1));
      oldest_seq_ = PQgetisnull(result->get(), 0, 0) ? newest_seq_ + 1 : ToU64(result->get(), 0, 0);
    }
    return {oldest_seq_, newest_seq_};
  }

  // A statement that changes something: a failure is counted and kept for the next Sync.
  Status Modify(const std::string& sql, const Params& params) {
    auto result = Query(sql, params);
    if (result.ok()) return Status::Ok();
    write_failures_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(failure_mutex_);
    failure_ = result.status();
    return result.status();
  }

  // A call's: options_.timeout_ms from now.
  PgDeadline Deadline() const { return PgDeadline::After(std::chrono::milliseconds(options_.timeout_ms)); }

  // The connection stayed busy with other calls until the deadline (each of them bounded too).
  static Status Busy(const PgDeadline& deadline) {
    return Status::Internal("PostgreSQL did not answer within " + PgDuration(deadline.timeout) +
                            " (the connection was busy with other calls)");
  }

  // With mutex_ held: a connection that works, or why there is none. After a failed attempt,
  // the next one waits kReconnectInterval (calls meanwhile get the same error at once).
  Status Connect(const PgDeadline& deadline) const {
    if (conn_ != nullptr) return Status::Ok();
    if (!down_status_.ok() && std::chrono::steady_clock::now() < next_connect_) return down_status_;
    auto conn = PgConnect(ConnectOptions(options_), deadline);
    if (!conn.ok()) {
      // From the end of the attempt: one that waited for a silent server took the whole timeout.
      next_connect_ = std::chrono::steady_clock::now() + kReconnectInterval;
      down_status_ = Status::Internal("PostgreSQL cannot be reached: " + conn.status().message());
      MarkDown(down_status_.message());
      return down_status_;
    }
    conn_ = std::move(conn).value();
    down_status_ = Status::Ok();
    if (down_.exchange(false, std::memory_order_acq_rel)) {
      const auto ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - down_since_).count();
      Log(LogLevel::kWarning, "PostgreSQL connection restored (down for " + std::to_string(ms) + " ms)");
    }
    return Status::Ok();
  }

  void MarkDown(const std::string& why) const {
    if (down_.exchange(true, std::memory_order_acq_rel)) return;
    down_since_ = std::chrono::steady_clock::now();
    Log(LogLevel::kError, why + "; calls fail until it is back");
  }

  // Runs one statement, parameters in text form, within options_.timeout_ms (the wait for the
  // connection included).
  Result<PgResult> Query(const std::string& sql, const Params& params) const {
    const auto deadline = Deadline();
    std::unique_lock<TimedMutex> lock(mutex_, deadline.at);
    if (!lock.owns_lock()) return Busy(deadline);
    return QueryLocked(sql, params, deadline);
  }

  // With mutex_ held: Query. A connection lost or timed out on the way is down until the
  // next call connects again.
  Result<PgResult> QueryLocked(const std::string& sql, const Params& params, const PgDeadline& deadline) const {
    Status s = Connect(deadline);
    if (!s.ok()) return s;
    auto result = PgExec(conn_, sql, params, deadline);
    if (conn_ == nullptr) MarkDown(result.status().message());
    return result;
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
      // Both statements under one lock: two trims at once would both count what they free.
      const auto deadline = Deadline();
      std::unique_lock<TimedMutex> lock(mutex_, deadline.at);
      if (!lock.owns_lock()) return Busy(deadline);
      auto result = QueryLocked("SELECT seq, bytes FROM " + q_ +
                                    "changes WHERE seq >= $1 AND seq < $2 ORDER BY seq LIMIT " +
                                    std::to_string(kTrimBatch),
                                {std::to_string(from), std::to_string(newest)}, deadline);
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
      auto deleted = QueryLocked("DELETE FROM " + q_ + "changes WHERE seq >= $1 AND seq <= $2",
                                 {std::to_string(from), std::to_string(last)}, deadline);
      if (!deleted.ok()) return deleted.status();
    }
    return Status::Ok();
  }

  void Log(LogLevel level, const std::string& message) const {
    if (options_.log) options_.log(level, message);
  }

  const PostgresOptions options_;
  // The connection and its state; guarded by mutex_ (down_ is also read without it), a timed
  // one so that a call waiting for its turn gives up at its deadline.
  mutable TimedMutex mutex_;
  mutable PgConn conn_;
  mutable Status down_status_;  // why the last attempt to connect failed
  mutable std::chrono::steady_clock::time_point next_connect_;
  mutable std::chrono::steady_clock::time_point down_since_;
  mutable std::atomic<bool> down_{false};
  std::mutex failure_mutex_;
  Status failure_;  // the last failed write since the previous Sync; guarded by failure_mutex_
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
  if (options.timeout_ms < 1) return Status::Internal("the PostgreSQL timeout must be at least 1 ms");
  // One deadline for connecting and preparing the schema.
  const auto deadline = PgDeadline::After(std::chrono::milliseconds(options.timeout_ms));
  auto connected = PgConnect(ConnectOptions(options), deadline);
  // Unavailable, not Internal: a broker started while the server is down waits for it
  // (postgres_deferred_store.hpp).
  if (!connected.ok()) return Status::Unavailable("cannot connect to PostgreSQL: " + connected.status().message());
  PgConn conn = std::move(connected).value();
  const char* encoding = PQparameterStatus(conn.get(), "server_encoding");
  if (encoding == nullptr || std::string(encoding) != "UTF8") {
    return Status::Internal(std::string("the PostgreSQL database's encoding is ") +
                            (encoding == nullptr ? "unknown" : encoding) + ", twins need UTF8");
  }
  Status s = PrepareSchema(conn, options.schema, deadline);
  // Another broker may have created it meanwhile: then it is there, checked the second time.
  if (!s.ok() && conn != nullptr) s = PrepareSchema(conn, options.schema, deadline);
  if (!s.ok()) return s;
  auto store = std::make_unique<PostgresStore>(std::move(conn), options);
  s = store->LoadChangeLog();
  if (!s.ok()) return s;
  return std::unique_ptr<DocumentStore>(std::move(store));
}

}  // namespace twins
