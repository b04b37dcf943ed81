#include "store/postgres_shared_store.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <mutex>
#include <set>
#include <tuple>

#include "store/postgres_sql.hpp"

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kReconnectInterval = std::chrono::milliseconds(250);
// Changes read at once when a broker catches up; more are read in the same batch.
constexpr int kCatchUpRows = 10000;
constexpr int kTrimRows = 4096;
constexpr auto kStatsInterval = std::chrono::seconds(10);
// The texts are fixed for a schema (a few dozen); past this, texts are sent unnamed.
constexpr size_t kMaxPrepared = 256;
// What devices and REST clients are told; the reason goes to the broker's log, once an outage.
constexpr char kUnavailable[] = "the twin store is unavailable; retry later";

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 60000));
}

class SharedStore final : public SharedPostgresStore {
 public:
  SharedStore(PostgresOptions options, std::unique_ptr<DocumentStore> reader)
      : options_(std::move(options)),
        reader_(std::move(reader)),
        q_("\"" + options_.schema + "\"."),
        changes_channel_(options_.schema + "_changes"),
        watches_channel_(options_.schema + "_watches") {}

  // At open: the write lock's row and the log's size exist (a schema made by an older build,
  // or by an import, has neither), the seq counter is past every seq the log or an import
  // (changelog_after) knows, and this broker has heard of every change so far.
  Status Prepare() {
    Status s = Connect();
    if (!s.ok()) return s;
    auto result = Run(
        {{"INSERT INTO " + q_ +
              "meta (key, value) SELECT 'seq', greatest(coalesce(max(seq), 0),"
              " coalesce((SELECT value::bigint FROM " +
              q_ +
              "meta WHERE key = 'changelog_after'), 0))::text"
              " FROM " +
              q_ + "changes ON CONFLICT (key) DO UPDATE SET value = greatest(" + q_ +
              "meta.value::bigint, excluded.value::bigint)::text",
          {}},
         {"INSERT INTO " + q_ + "meta (key, value) SELECT 'log_bytes', coalesce(sum(bytes), 0)::text FROM " + q_ +
              "changes ON CONFLICT (key) DO NOTHING",
          {}},
         {"SELECT value::bigint FROM " + q_ + "meta WHERE key = 'seq'", {}},
         {"SELECT value::bigint FROM " + q_ + "meta WHERE key = 'log_bytes'", {}}});
    if (!result.ok()) return result.status();
    heard_ = ToU64((*result)[2].get(), 0, 0);
    log_bytes_ = ToU64((*result)[3].get(), 0, 0);
    reconnected_ = false;  // the engine reads every watch as it starts
    return Status::Ok();
  }

  // --- the batch --------------------------------------------------------------------------

  Result<BatchStart> Begin(const BatchReads& reads) override {
    EndBatch();
    Status s = Connect();
    if (!s.ok()) return s;
    const bool all_watches = reads.all_watches || reconnected_;
    std::vector<Statement> statements;
    // A batch that only reads reads one moment: its change-log entries and documents agree
    // (a get never shows a version whose change this broker has not heard of yet).
    statements.push_back({reads.lock ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", {}});
    if (reads.lock) statements.push_back({"SELECT value::bigint FROM " + q_ + "meta WHERE key = 'seq' FOR UPDATE", {}});
    statements.push_back({std::string("SELECT ") + kChangeColumns + " FROM " + q_ +
                              "changes WHERE seq > $1 ORDER BY seq LIMIT " + std::to_string(kCatchUpRows),
                          {BigInt(heard_)}});
    AddReads(&statements, reads.documents, reads.twins, all_watches);
    const bool read_size = Clock::now() >= next_stats_;
    if (read_size) {
      statements.push_back(
          {"SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
           " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
           {options_.schema}});
    }
    auto results = Run(statements);
    if (!results.ok()) {
      Abandon();
      return results.status();
    }
    if (read_size) {
      disk_bytes_.store(ToU64(results->back().get(), 0, 0), std::memory_order_relaxed);
      next_stats_ = Clock::now() + kStatsInterval;
    }
    in_batch_ = true;
    batch_status_ = Status::Ok();
    locked_ = reads.lock;
    BatchStart start;
    start.resync = all_watches;
    size_t next = 1;
    if (reads.lock) start.locked_seq = ToU64((*results)[next++].get(), 0, 0);
    const PGresult* changes = (*results)[next++].get();
    for (int row = 0; row < PQntuples(changes); ++row) start.elsewhere.push_back(ReadChange(changes, row));
    s = ReadMoreChanges(&start.elsewhere, PQntuples(changes));
    if (!s.ok()) {
      Abandon();
      return s;
    }
    // Seqs are given out one after the other under the write lock: a hole after the last
    // heard one means entries were trimmed before this broker read them.
    start.gap = !start.elsewhere.empty() && heard_ != 0 && start.elsewhere.front().seq > heard_ + 1;
    if (!start.elsewhere.empty()) heard_ = start.elsewhere.back().seq;
    if (start.locked_seq) heard_ = std::max(heard_, *start.locked_seq);

    TakeReads(*results, &next, reads.documents, reads.twins, all_watches, &start.watches);
    all_watches_read_ = all_watches;
    watches_read_.insert(reads.twins.begin(), reads.twins.end());
    reconnected_ = false;
    return start;
  }

  Result<std::map<std::string, std::vector<WatchRecord>>> Join(const BatchReads& reads) override {
    if (!in_batch_ || !locked_) {
      batch_status_ = Status::Internal("calls join only a batch that holds the write lock");
      return batch_status_;
    }
    // A batch that failed already takes no more calls: they go to the next batch.
    if (!batch_status_.ok()) return batch_status_;
    // Only what the batch has not read: what it holds may be its own writes, not stored yet.
    std::vector<std::pair<std::string, std::string>> documents;
    for (const auto& key : reads.documents) {
      if (documents_.count(key) == 0) documents.push_back(key);
    }
    // Twins whose names the batch holds (a list read them) may still need their watches.
    std::vector<std::string> twins, watches_only;
    for (const std::string& twin : reads.twins) {
      if (names_.count(twin) == 0) {
        twins.push_back(twin);
      } else if (!all_watches_read_ && watches_read_.count(twin) == 0) {
        watches_only.push_back(twin);
      }
    }
    std::map<std::string, std::vector<WatchRecord>> watches;
    if (documents.empty() && twins.empty() && watches_only.empty()) return watches;
    std::vector<Statement> statements;
    AddReads(&statements, documents, twins, false);
    ArrayLiteral watched;
    for (const std::string& twin : watches_only) watched.Add(twin);
    if (!watches_only.empty()) {
      statements.push_back({"SELECT twin, doc, watcher, value FROM " + q_ +
                                "watches WHERE twin = ANY($1::text[]) ORDER BY twin, doc, watcher",
                            {watched.Finish()}});
    }
    auto results = InBatch(statements);
    if (!results.ok()) return results.status();
    size_t next = 0;
    TakeReads(*results, &next, documents, twins, false, &watches);
    if (!watches_only.empty()) {
      for (const std::string& twin : watches_only) watches[twin];
      const PGresult* rows = (*results)[next++].get();
      for (int row = 0; row < PQntuples(rows); ++row) {
        WatchRecord watch{ToString(rows, row, 0), ToString(rows, row, 1), ToString(rows, row, 2),
                          ToString(rows, row, 3)};
        watches[watch.twin].push_back(std::move(watch));
      }
    }
    watches_read_.insert(twins.begin(), twins.end());
    watches_read_.insert(watches_only.begin(), watches_only.end());
    return watches;
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    if (!in_batch_) return reader_->Get(twin, doc);
    auto found = documents_.find({std::string(twin), std::string(doc)});
    if (found != documents_.end()) return found->second;
    auto result = InBatch({{"SELECT version, modified_ms, data FROM " + q_ + "documents WHERE twin = $1 AND doc = $2",
                            {std::string(twin), std::string(doc)}}});
    if (!result.ok()) return result.status();
    const PGresult* rows = (*result)[0].get();
    std::optional<StoredDocument> document;
    if (PQntuples(rows) > 0) document = StoredDocument{ToU64(rows, 0, 0), ToString(rows, 0, 2), ToI64(rows, 0, 1)};
    documents_[{std::string(twin), std::string(doc)}] = document;
    return document;
  }

  Result<std::vector<std::string>> List(std::string_view twin) const override {
    if (!in_batch_) return reader_->List(twin);
    auto found = names_.find(twin);
    if (found == names_.end()) {
      auto result = InBatch(
          {{"SELECT doc FROM " + q_ + "documents WHERE twin = $1 ORDER BY doc", {std::string(twin)}}});
      if (!result.ok()) return result.status();
      std::set<std::string>& names = names_[std::string(twin)];
      for (int row = 0; row < PQntuples((*result)[0].get()); ++row) names.insert(ToString((*result)[0].get(), row, 0));
      found = names_.find(twin);
    }
    return std::vector<std::string>(found->second.begin(), found->second.end());
  }

  Status Write(std::vector<DocumentWrite> writes) override {
    Status s = CheckWritable();
    if (!s.ok()) return s;
    for (DocumentWrite& write : writes) {
      documents_[{write.twin, write.doc}] = write.document;
      auto names = names_.find(write.twin);
      if (names != names_.end() && write.document) names->second.insert(write.doc);
      if (names != names_.end() && !write.document) names->second.erase(write.doc);
      writes_.push_back(std::move(write));
    }
    return Status::Ok();
  }

  Status PutWatch(const WatchRecord& watch) override {
    Status s = CheckWritable();
    if (s.ok()) watch_writes_[{watch.twin, watch.doc, watch.watcher}] = watch.value;
    return s;
  }

  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    Status s = CheckWritable();
    if (s.ok()) watch_writes_[{std::string(twin), std::string(doc), std::string(watcher)}] = std::nullopt;
    return s;
  }

  Status DeleteAll(std::string_view /*twin*/) override {
    return Status::Internal("the shared store deletes documents one by one, in a batch");
  }

  // Commits the batch: its writes, change-log entries, the newest seq, the notifications.
  Status Sync() override {
    if (!in_batch_) return Status::Ok();
    if (!batch_status_.ok()) {  // something in the batch failed: nothing of it is committed
      Status failed = batch_status_;
      Abandon();
      return failed;
    }
    const bool wrote = !writes_.empty() || !watch_writes_.empty();
    if (wrote && !locked_) {
      Rollback();
      return Status::Internal("a batch that did not take the write lock tried to write");
    }
    if (!wrote) {
      // Nothing to commit: what the calls read holds whatever the COMMIT's outcome, so it is
      // sent without waiting; the next batch's first statements go behind it (one round trip
      // per read batch, where there were two).
      Status s = SendOnly({{"COMMIT", {}}});
      EndBatch();
      if (!s.ok()) Abandon();
      return s;
    }
    std::vector<Statement> statements;
    uint64_t first_seq = 0, last_seq = 0, added_bytes = 0;
    if (!writes_.empty()) statements.push_back(WriteStatement(q_, writes_, &first_seq, &last_seq, &added_bytes));
    std::set<std::string> watched_twins;
    if (!watch_writes_.empty()) AddWatchStatements(&statements, &watched_twins);
    size_t log_size = 0;  // the statement that reads the log's size, if any
    if (last_seq != 0) {
      statements.push_back({"UPDATE " + q_ + "meta SET value = $1 WHERE key = 'seq'", {BigInt(last_seq)}});
      statements.push_back({"UPDATE " + q_ + "meta SET value = (value::bigint + $1)::text WHERE key = 'log_bytes'",
                            {BigInt(added_bytes)}});
      // Retention: the oldest entries go once the log is past its bound (checked with the
      // size this broker last saw; any broker trims, under the write lock).
      const uint64_t bound = options_.changelog_bytes;
      const uint64_t size = log_bytes_ + added_bytes;
      if (size > bound) AddTrimStatement(&statements, size - bound * 9 / 10, last_seq);
      statements.push_back({"SELECT pg_notify($1, $2)", {changes_channel_, BigInt(last_seq)}});
      log_size = statements.size();
      statements.push_back({"SELECT value::bigint FROM " + q_ + "meta WHERE key = 'log_bytes'", {}});
    }
    for (const std::string& twin : watched_twins)
      statements.push_back({"SELECT pg_notify($1, $2)", {watches_channel_, twin}});
    statements.push_back({"COMMIT", {}});
    auto results = Run(statements);
    EndBatch();
    if (!results.ok()) {
      Abandon();
      return results.status();
    }
    if (last_seq != 0) {
      heard_ = std::max(heard_, last_seq);
      log_bytes_ = ToU64((*results)[log_size].get(), 0, 0);
    }
    return Status::Ok();
  }

  void Rollback() override {
    if (in_batch_) Abandon();
  }

  StoreNotices Wait(int wake_fd, std::chrono::milliseconds timeout) override {
    // The last batch's COMMIT, so that its result does not wake the poll below.
    (void)Drain(Clock::now() + std::chrono::milliseconds(options_.timeout_ms));
    StoreNotices out;
    TakeNotices(&out);
    if (out.changes || !out.watch_twins.empty()) return out;
    pollfd fds[2] = {{wake_fd, POLLIN, 0}, {conn_ ? PQsocket(conn_.get()) : -1, POLLIN, 0}};
    const int count = fds[1].fd >= 0 ? 2 : 1;
    if (poll(fds, count, static_cast<int>(timeout.count())) <= 0) return out;
    if ((fds[0].revents & POLLIN) != 0) {
      uint64_t value;
      if (read(wake_fd, &value, sizeof value) < 0) {
        // Nothing to do: the eventfd stays readable and the next poll returns at once.
      }
    }
    if (count == 2 && fds[1].revents != 0) {
      if (PQconsumeInput(conn_.get()) == 0) {
        Lost("PostgreSQL connection lost: " + ErrorText(PQerrorMessage(conn_.get())));
      } else {
        TakeNotices(&out);
      }
    }
    return out;
  }

  // Before any batch (an import): the log goes on after `seq`, and the seqs given out too.
  Status StartChangeLogAfter(uint64_t seq) override {
    Status s = reader_->StartChangeLogAfter(seq);
    if (s.ok()) s = Connect();
    if (!s.ok()) return s;
    auto result = Run(
        {{"UPDATE " + q_ + "meta SET value = greatest(value::bigint, $1)::text WHERE key = 'seq'", {BigInt(seq)}}});
    if (!result.ok()) return result.status();
    heard_ = std::max(heard_, seq);
    return Status::Ok();
  }

  // --- any thread ---------------------------------------------------------------------------

  ChangeBounds Changes() const override { return reader_->Changes(); }
  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    return reader_->ReadChanges(after, max_count, max_bytes);
  }
  // In a batch on its connection (within its deadline), else on the reader's.
  Result<std::optional<Change>> FindVersion(std::string_view twin, std::string_view doc,
                                            uint64_t version) const override {
    if (!in_batch_) return reader_->FindVersion(twin, doc, version);
    if (version > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::optional<Change>();
    auto result = InBatch({{std::string("SELECT ") + kChangeColumns + " FROM " + q_ +
                                "changes WHERE twin = $1 AND doc = $2 AND version = $3 AND kind <> 3"
                                " ORDER BY seq DESC LIMIT 1",
                            {std::string(twin), std::string(doc), std::to_string(version)}}});
    if (!result.ok()) return result.status();
    const PGresult* rows = (*result)[0].get();
    if (PQntuples(rows) == 0) return std::optional<Change>();
    return std::optional<Change>(ReadChange(rows, 0));
  }
  Result<uint64_t> OldestVersion(std::string_view twin, std::string_view doc) const override {
    if (!in_batch_) return reader_->OldestVersion(twin, doc);
    auto result = InBatch(
        {{"SELECT coalesce(min(version), 0) FROM " + q_ + "changes WHERE twin = $1 AND doc = $2 AND kind <> 3",
          {std::string(twin), std::string(doc)}}});
    if (!result.ok()) return result.status();
    return ToU64((*result)[0].get(), 0, 0);
  }
  Result<std::vector<WatchRecord>> ListWatches() const override { return reader_->ListWatches(); }
  Result<uint64_t> CountTwins() const override { return reader_->CountTwins(); }
  Result<ContentCounts> CountContents() const override { return reader_->CountContents(); }
  // No round trip: read by the broker thread ($SYS) and /metrics. The size is the one the
  // batch thread read last (every kStatsInterval).
  StoreStats Stats() const override {
    StoreStats stats;
    stats.write_failures = failures_.load(std::memory_order_relaxed);
    stats.stopped = down_.load(std::memory_order_acquire);
    stats.disk_bytes = disk_bytes_.load(std::memory_order_relaxed);
    return stats;
  }
  // Down while the batch connection is: requests then fail at once with why.
  Status Writable(bool /*grows*/) override {
    if (!down_.load(std::memory_order_acquire)) return Status::Ok();
    std::lock_guard<std::mutex> lock(down_mutex_);
    return down_status_;
  }

 private:
  using WatchKey = std::tuple<std::string, std::string, std::string>;

  Status CheckWritable() const {
    if (in_batch_ && locked_) return Status::Ok();
    return Status::Internal("the shared store writes only in a batch that holds the write lock");
  }

  // Reading `documents`, and the document names and watches of `twins` (every watch with
  // `all_watches`); a batch that names no twin (reads only) reads neither.
  void AddReads(std::vector<Statement>* statements, const std::vector<std::pair<std::string, std::string>>& documents,
                const std::vector<std::string>& twins, bool all_watches) const {
    ArrayLiteral doc_twins, doc_names, twin_names;
    for (const auto& [twin, doc] : documents) {
      doc_twins.Add(twin);
      doc_names.Add(doc);
    }
    for (const std::string& twin : twins) twin_names.Add(twin);
    statements->push_back({"SELECT d.twin, d.doc, d.version, d.modified_ms, d.data FROM " + q_ +
                               "documents d JOIN unnest($1::text[], $2::text[]) AS k (twin, doc)"
                               " ON d.twin = k.twin AND d.doc = k.doc",
                           {doc_twins.Finish(), doc_names.Finish()}});
    if (twins.empty() && !all_watches) return;
    statements->push_back({"SELECT twin, doc FROM " + q_ + "documents WHERE twin = ANY($1::text[]) ORDER BY twin, doc",
                           {twin_names.Finish()}});
    statements->push_back(
        all_watches
            ? Statement{"SELECT twin, doc, watcher, value FROM " + q_ + "watches ORDER BY twin, doc, watcher", {}}
            : Statement{"SELECT twin, doc, watcher, value FROM " + q_ +
                            "watches WHERE twin = ANY($1::text[]) ORDER BY twin, doc, watcher",
                        {twin_names.Finish()}});
  }

  // The results of AddReads's statements, from results[*next]: into documents_ and names_, and
  // the watches (a twin without any included, with none).
  void TakeReads(const std::vector<PgResult>& results, size_t* next,
                 const std::vector<std::pair<std::string, std::string>>& documents,
                 const std::vector<std::string>& twins, bool all_watches,
                 std::map<std::string, std::vector<WatchRecord>>* watches) const {
    for (const auto& key : documents) documents_[key] = std::nullopt;  // absent unless read below
    const PGresult* found = results[(*next)++].get();
    for (int row = 0; row < PQntuples(found); ++row) {
      documents_[{ToString(found, row, 0), ToString(found, row, 1)}] = StoredDocument{
          ToU64(found, row, 2), ToString(found, row, 4), ToI64(found, row, 3)};
    }
    if (twins.empty() && !all_watches) return;
    for (const std::string& twin : twins) names_[twin];
    const PGresult* names = results[(*next)++].get();
    for (int row = 0; row < PQntuples(names); ++row) names_[ToString(names, row, 0)].insert(ToString(names, row, 1));
    for (const std::string& twin : twins) (*watches)[twin];
    const PGresult* rows = results[(*next)++].get();
    for (int row = 0; row < PQntuples(rows); ++row) {
      WatchRecord watch{ToString(rows, row, 0), ToString(rows, row, 1), ToString(rows, row, 2), ToString(rows, row, 3)};
      (*watches)[watch.twin].push_back(std::move(watch));
    }
  }

  // Every watch written in the batch: its final state, upserted or deleted.
  void AddWatchStatements(std::vector<Statement>* statements, std::set<std::string>* twins) const {
    ArrayLiteral put_twins, put_docs, put_watchers, put_values, del_twins, del_docs, del_watchers;
    for (const auto& [key, value] : watch_writes_) {
      const auto& [twin, doc, watcher] = key;
      twins->insert(twin);
      if (value) {
        put_twins.Add(twin);
        put_docs.Add(doc);
        put_watchers.Add(watcher);
        put_values.Add(*value);
      } else {
        del_twins.Add(twin);
        del_docs.Add(doc);
        del_watchers.Add(watcher);
      }
    }
    statements->push_back({"INSERT INTO " + q_ +
                               "watches (twin, doc, watcher, value) SELECT * FROM unnest($1::text[], $2::text[],"
                               " $3::text[], $4::text[]) ON CONFLICT (twin, doc, watcher) DO UPDATE SET value ="
                               " excluded.value",
                           {put_twins.Finish(), put_docs.Finish(), put_watchers.Finish(), put_values.Finish()}});
    statements->push_back({"DELETE FROM " + q_ +
                               "watches w USING unnest($1::text[], $2::text[], $3::text[]) AS g (twin, doc, watcher)"
                               " WHERE w.twin = g.twin AND w.doc = g.doc AND w.watcher = g.watcher",
                           {del_twins.Finish(), del_docs.Finish(), del_watchers.Finish()}});
  }

  // Deletes the oldest entries, at least `excess` bytes of them if the first kTrimRows hold
  // as much, never `newest`; the log's size goes down by what went.
  void AddTrimStatement(std::vector<Statement>* statements, uint64_t excess, uint64_t newest) const {
    statements->push_back(
        {"WITH oldest AS (SELECT seq, bytes, sum(bytes) OVER (ORDER BY seq) AS upto FROM (SELECT seq, bytes FROM " +
             q_ + "changes ORDER BY seq LIMIT " + std::to_string(kTrimRows) + ") AS first), gone AS (DELETE FROM " +
             q_ +
             "changes WHERE seq IN (SELECT seq FROM oldest WHERE upto - bytes < $1) AND seq < $2 RETURNING bytes)"
             " UPDATE " +
             q_ +
             "meta SET value = (value::bigint - (SELECT coalesce(sum(bytes), 0) FROM gone))::text"
             " WHERE key = 'log_bytes'",
         {BigInt(excess), BigInt(newest)}});
  }

  // A full page of changes may have a next one: read in the same transaction.
  Status ReadMoreChanges(std::vector<Change>* changes, int last_page) const {
    while (last_page == kCatchUpRows) {
      auto more = Run({{std::string("SELECT ") + kChangeColumns + " FROM " + q_ +
                            "changes WHERE seq > $1 ORDER BY seq LIMIT " + std::to_string(kCatchUpRows),
                        {BigInt(changes->back().seq)}}});
      if (!more.ok()) return more.status();
      const PGresult* rows = (*more)[0].get();
      last_page = PQntuples(rows);
      for (int row = 0; row < last_page; ++row) changes->push_back(ReadChange(rows, row));
    }
    return Status::Ok();
  }

  void TakeNotices(StoreNotices* out) {
    if (!conn_) return;
    const int own = PQbackendPID(conn_.get());
    while (PGnotify* notice = PQnotifies(conn_.get())) {
      if (notice->be_pid != own) {
        if (changes_channel_ == notice->relname) out->changes = true;
        if (watches_channel_ == notice->relname) out->watch_twins.emplace_back(notice->extra);
      }
      PQfreemem(notice);
    }
  }

  void EndBatch() {
    in_batch_ = locked_ = all_watches_read_ = false;
    watches_read_.clear();
    batch_status_ = Status::Ok();
    documents_.clear();
    names_.clear();
    writes_.clear();
    watch_writes_.clear();
  }

  // After a failed statement (the transaction is aborted) or a lost connection (gone already).
  void Abandon() {
    EndBatch();
    reconnected_ = true;  // what the engine holds of the batch (watches, _config) is read again
    // The prepared statements go too, in case one of them is what failed (a table changed
    // under it): the next batch prepares them again.
    if (conn_ && !Run({{"ROLLBACK", {}}, {"DEALLOCATE ALL", {}}}, false).ok()) {
      Lost("PostgreSQL connection dropped: it could not roll back");
    }
    prepared_.clear();
  }

  // --- the connection -----------------------------------------------------------------------

  Status Connect() const {
    if (conn_ && PQstatus(conn_.get()) == CONNECTION_OK) return Status::Ok();
    const auto now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(down_mutex_);
      if (down_.load() && now < next_connect_) return down_status_;
    }
    // Non-blocking, within the timeout even when a server does not answer (postgres_connection.hpp).
    auto conn = PgConnect(ConnectOptions(options_), PgDeadline::After(std::chrono::milliseconds(options_.timeout_ms)));
    if (!conn.ok()) {
      MarkDown("PostgreSQL cannot be reached: " + conn.status().message(), Clock::now() + kReconnectInterval);
      std::lock_guard<std::mutex> lock(down_mutex_);
      return down_status_;
    }
    Forget();
    conn_ = std::move(conn).value();
    // The server ends what would outlast the deadline, before this side gives up on it (then
    // the batch is surely not committed): a statement, a wait for another broker's write lock,
    // and a broker that stalls inside its transaction (its lock is freed for the others).
    const int t = options_.timeout_ms;
    auto listening = Run(
        {{"LISTEN \"" + changes_channel_ + "\"", {}},
         {"LISTEN \"" + watches_channel_ + "\"", {}},
         {"SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),"
          " set_config('idle_in_transaction_session_timeout', $3, false)",
          {std::to_string(std::max(t * 3 / 4, 50)), std::to_string(std::max(t / 2, 50)), std::to_string(t)}},
         // Statements are prepared (Run), but still planned for each execution with its values:
         // a generic plan made while a table is small keeps scanning it whole as it grows
         // (measured: the change log's catch-up did, and read batches fell to a fifth of their
         // rate after a minute of patches).
         {"SET plan_cache_mode = force_custom_plan", {}}});
    if (!listening.ok()) return listening.status();
    reconnected_ = true;  // watches may have changed meanwhile: the next batch reads them all
    if (down_.exchange(false)) {
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_since_).count();
      Log(LogLevel::kWarning, "PostgreSQL connection restored (down for " + std::to_string(ms) + " ms)");
    }
    return Status::Ok();
  }

  // What belongs to the connection: its prepared statements and unread results.
  void Forget() const {
    prepared_.clear();
    unread_ = 0;
  }

  void MarkDown(const std::string& why, Clock::time_point retry) const {
    {
      std::lock_guard<std::mutex> lock(down_mutex_);
      down_status_ = Status::Unavailable(kUnavailable);
      next_connect_ = retry;
    }
    if (down_.exchange(true)) return;
    down_since_ = Clock::now();
    Log(LogLevel::kError, why + "; twin requests fail until it is back");
  }

  void Lost(const std::string& why) const {
    Forget();
    conn_.reset();
    MarkDown(why, Clock::now());
  }

  // A statement of the open batch: once one failed, the whole batch has (Sync says so).
  Result<std::vector<PgResult>> InBatch(const std::vector<Statement>& statements) const {
    if (!batch_status_.ok()) return batch_status_;
    auto result = Run(statements);
    if (!result.ok()) batch_status_ = result.status();
    return result;
  }

  // Runs `statements` in one pipeline (one round trip), within options_.timeout_ms: each one's
  // result, or the first error (the later ones were not run). Past the deadline, or when the
  // connection breaks, the connection goes.
  // Never connects: a connection made again inside a batch would run the rest of it outside
  // its transaction, without the write lock it read under.
  // With `prepare`, each text is prepared once per connection, in the pipeline of its first
  // use, and executed by name from then on: the server no longer parses and analyses every
  // statement of every batch again (with planning, 30 % of its CPU under load; plans are still
  // made for each execution, see Connect). The texts are fixed for a schema (values are
  // parameters).
  // Sent behind what SendOnly sent, if anything (one wake-up of the server for both): the
  // connection lost reading that fails these too.
  Result<std::vector<PgResult>> Run(const std::vector<Statement>& statements, bool prepare = true) const {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    std::vector<const std::string*> preparing;
    Status s = Send(statements, prepare, &preparing, deadline);
    if (s.ok()) s = Drain(deadline);
    if (!s.ok()) return s;
    return Receive(preparing, deadline);
  }

  // Sends `statements` (never prepared) in a pipeline whose results are read by the next Run
  // or Wait: for a COMMIT whose outcome the batch does not wait for.
  Status SendOnly(const std::vector<Statement>& statements) const {
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
    Status s = Drain(deadline);
    std::vector<const std::string*> preparing;
    if (s.ok()) s = Send(statements, false, &preparing, deadline);
    if (s.ok()) unread_ = statements.size();
    return s;
  }

  // Reads the results of what SendOnly sent: only a lost connection matters (a COMMIT refused
  // ends its transaction all the same).
  Status Drain(Clock::time_point deadline) const {
    if (unread_ == 0) return Status::Ok();
    const std::vector<const std::string*> preparing(unread_, nullptr);
    unread_ = 0;
    auto results = Receive(preparing, deadline);
    return conn_ ? Status::Ok() : results.status();
  }

  // Queues `statements` and the pipeline's end, and sends them. `preparing` gets, for each
  // statement, its text when it is prepared in this pipeline (else null).
  Status Send(const std::vector<Statement>& statements, bool prepare, std::vector<const std::string*>* preparing,
              Clock::time_point deadline) const {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
      if (conn_) Lost("PostgreSQL connection lost: " + ErrorText(PQerrorMessage(conn_.get())));
      std::lock_guard<std::mutex> lock(down_mutex_);
      return down_status_.ok() ? Status::Unavailable(kUnavailable) : down_status_;
    }
    PGconn* conn = conn_.get();
    if (PQenterPipelineMode(conn) != 1) return Broken("cannot enter pipeline mode");
    for (const Statement& statement : statements) {
      std::vector<const char*> values;
      values.reserve(statement.params.size());
      for (const std::string& param : statement.params) values.push_back(param.c_str());
      const int count = static_cast<int>(values.size());
      const std::string* name = nullptr;
      preparing->push_back(nullptr);
      auto found = prepare ? prepared_.find(statement.sql) : prepared_.end();
      if (found != prepared_.end()) {
        name = &found->second;
      } else if (prepare && prepared_.size() < kMaxPrepared) {
        // Named before its prepare's result is read, so that a text used twice in one pipeline
        // is prepared once; a prepare that fails takes its name out again (Receive).
        found = prepared_.emplace(statement.sql, "s" + std::to_string(++statement_names_)).first;
        name = &found->second;
        preparing->back() = &found->first;
        if (PQsendPrepare(conn, name->c_str(), statement.sql.c_str(), count, nullptr) != 1) {
          return Broken("cannot send a statement");
        }
      }
      const int sent = name != nullptr
                           ? PQsendQueryPrepared(conn, name->c_str(), count, values.data(), nullptr, nullptr, 0)
                           : PQsendQueryParams(conn, statement.sql.c_str(), count, nullptr, values.data(), nullptr,
                                               nullptr, 0);
      if (sent != 1) return Broken("cannot send a statement");
    }
    if (PQpipelineSync(conn) != 1) return Broken("cannot send the pipeline");
    return Flush(deadline);
  }

  // Reads the results of a pipeline Send sent: each statement's (after its prepare's when it
  // was prepared there), then the pipeline's end.
  Result<std::vector<PgResult>> Receive(const std::vector<const std::string*>& preparing,
                                        Clock::time_point deadline) const {
    std::vector<PgResult> results;
    Status failed;
    for (const std::string* prepared_text : preparing) {
      for (int part = prepared_text != nullptr ? 0 : 1; part < 2; ++part) {
        auto result = Next(deadline);
        if (!result.ok()) return result.status();
        const ExecStatusType status = PQresultStatus(result->get());
        if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
          if (failed.ok()) failed = SqlError(result->get());
          if (part == 0) prepared_.erase(std::string(*prepared_text));  // not prepared: aborted before, or refused
        }
        if (part == 1) results.push_back(std::move(result).value());
        auto end = Next(deadline);  // each result is followed by a null one
        if (!end.ok()) return end.status();
      }
    }
    auto sync = Next(deadline);
    if (!sync.ok()) return sync.status();
    // The connection stays in pipeline mode: another pipeline may have been sent behind this one.
    if (PQresultStatus(sync->get()) != PGRES_PIPELINE_SYNC) return Broken("the pipeline did not end as expected");
    if (!failed.ok()) return failed;
    return results;
  }

  Status Flush(Clock::time_point deadline) const {
    PGconn* conn = conn_.get();
    for (int rc = PQflush(conn); rc != 0; rc = PQflush(conn)) {
      if (rc < 0) return Broken("cannot send to the server");
      pollfd fd{PQsocket(conn), POLLIN | POLLOUT, 0};
      const int left = MillisLeft(deadline);
      if (left == 0 || poll(&fd, 1, left) == 0) return TimedOut();
      if ((fd.revents & POLLIN) != 0 && PQconsumeInput(conn) == 0) return Broken("cannot read from the server");
    }
    return Status::Ok();
  }

  // The next result (maybe null), waiting for it no later than `deadline`.
  Result<PgResult> Next(Clock::time_point deadline) const {
    PGconn* conn = conn_.get();
    while (PQisBusy(conn) != 0) {
      pollfd fd{PQsocket(conn), POLLIN, 0};
      const int left = MillisLeft(deadline);
      if (left == 0 || poll(&fd, 1, left) == 0) return TimedOut();
      if (PQconsumeInput(conn) == 0) return Broken("cannot read from the server");
    }
    return PgResult(PQgetResult(conn));
  }

  // What the server refused. Timeouts, lock waits, a server shutting down or short of resources
  // say "retry later" (the batch is rolled back: nothing of it was kept); anything else is ours.
  Status SqlError(const PGresult* result) const {
    const char* field = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    const std::string state = field == nullptr ? "" : field;
    const std::string text = "PostgreSQL error " + state + ": " + ErrorText(PQresultErrorMessage(result));
    const std::string kind = state.substr(0, 2);
    if (kind == "08" || kind == "40" || kind == "53" || kind == "57" || state == "55P03" || state == "25P03") {
      failures_.fetch_add(1, std::memory_order_relaxed);
      Log(LogLevel::kWarning, text);
      return Status::Unavailable(kUnavailable);
    }
    return Status::Internal(text);
  }

  Status TimedOut() const {
    const std::string why = "PostgreSQL did not answer within " + std::to_string(options_.timeout_ms) + " ms";
    Lost(why);
    return Status::Unavailable("the twin store did not answer within " + std::to_string(options_.timeout_ms) +
                               " ms; retry later");
  }

  Status Broken(const std::string& what) const {
    const std::string why = "PostgreSQL connection lost (" + what + "): " + ErrorText(PQerrorMessage(conn_.get()));
    Lost(why);
    return Status::Unavailable(kUnavailable);
  }

  void Log(LogLevel level, const std::string& message) const {
    if (options_.log) options_.log(level, message);
  }

  const PostgresOptions options_;
  const std::unique_ptr<DocumentStore> reader_;  // for other threads: a connection of its own
  const std::string q_;                          // the schema, quoted, with its dot
  const std::string changes_channel_;
  const std::string watches_channel_;

  // The batch thread's: the connection, what the batch read and wrote.
  mutable PgConn conn_;
  // The statements prepared on conn_: text -> name. Forgotten with the connection, and after a
  // failed batch (Abandon deallocates them): whatever went wrong, the next batch prepares again.
  mutable std::map<std::string, std::string> prepared_;
  mutable uint64_t statement_names_ = 0;
  mutable size_t unread_ = 0;  // statements SendOnly sent whose results are not read yet
  mutable bool reconnected_ = false;
  mutable bool in_batch_ = false;
  mutable Status batch_status_;  // the first failure inside the open batch
  Clock::time_point next_stats_;
  bool locked_ = false;
  uint64_t heard_ = 0;      // the newest seq this broker has heard of (its own included)
  uint64_t log_bytes_ = 0;  // the log's size at the last commit
  mutable std::map<std::pair<std::string, std::string>, std::optional<StoredDocument>> documents_;
  mutable std::map<std::string, std::set<std::string>, std::less<>> names_;
  // The twins whose watches the batch read (Begin's, or a Join's); all of them.
  std::set<std::string> watches_read_;
  bool all_watches_read_ = false;
  std::vector<DocumentWrite> writes_;
  std::map<WatchKey, std::optional<std::string>> watch_writes_;

  // Whether the batch connection is down, and why; read by other threads.
  mutable std::atomic<bool> down_{false};
  mutable std::atomic<uint64_t> failures_{0};
  std::atomic<uint64_t> disk_bytes_{0};
  mutable std::mutex down_mutex_;
  mutable Status down_status_;
  mutable Clock::time_point next_connect_;
  mutable Clock::time_point down_since_;
};

}  // namespace

Result<std::unique_ptr<SharedPostgresStore>> OpenSharedPostgresStore(PostgresOptions options) {
  options.shared = true;
  auto reader = OpenPostgresStore(options);  // creates or checks the schema
  if (!reader.ok()) return reader.status();
  auto store = std::make_unique<SharedStore>(options, std::move(reader).value());
  Status s = store->Prepare();
  if (!s.ok()) return s;
  return std::unique_ptr<SharedPostgresStore>(std::move(store));
}

}  // namespace twins
