#include "store/postgres_deferred_store.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kFirstRetry = std::chrono::milliseconds(250);
constexpr auto kLongestRetry = std::chrono::seconds(5);
constexpr char kUnavailable[] = "the twin store is unavailable; retry later";

class DeferredStore final : public SharedPostgresStore {
 public:
  explicit DeferredStore(PostgresOptions options) : options_(std::move(options)), down_since_(Clock::now()) {}

  // --- the batch thread -----------------------------------------------------------------------

  Result<BatchStart> Begin(const BatchReads& reads) override {
    SharedPostgresStore* store = Open();
    if (store == nullptr) return Status::Unavailable(kUnavailable);
    if (started_) return store->Begin(reads);
    // The first batch on the store: every watch (the engine started with none), and the seq
    // the engine's event streams and next writes go on from.
    BatchReads all = reads;
    all.all_watches = true;
    auto start = store->Begin(all);
    if (!start.ok()) return start;
    start->resync = true;
    if (!start->locked_seq) start->locked_seq = store->Changes().newest;
    started_ = true;
    return start;
  }

  Result<std::map<std::string, std::vector<WatchRecord>>> Join(const BatchReads& reads) override {
    SharedPostgresStore* store = open_.load(std::memory_order_acquire);
    if (store == nullptr) return Status::Unavailable(kUnavailable);
    return store->Join(reads);
  }

  void Rollback() override {
    if (SharedPostgresStore* store = open_.load(std::memory_order_acquire)) store->Rollback();
  }

  StoreNotices Wait(int wake_fd, std::chrono::milliseconds timeout) override {
    if (SharedPostgresStore* store = open_.load(std::memory_order_acquire)) return store->Wait(wake_fd, timeout);
    pollfd wake{wake_fd, POLLIN, 0};
    if (poll(&wake, 1, static_cast<int>(timeout.count())) > 0 && (wake.revents & POLLIN) != 0) {
      uint64_t value;
      if (read(wake_fd, &value, sizeof value) < 0) {
        // Nothing to do: the eventfd stays readable and the next poll returns at once.
      }
    }
    return {};
  }

  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    if (auto* store = Opened()) return store->Get(twin, doc);
    return Down();
  }
  Status Write(std::vector<DocumentWrite> writes) override {
    if (auto* store = Opened()) return store->Write(std::move(writes));
    return Down();
  }
  Result<std::vector<std::string>> List(std::string_view twin) const override {
    if (auto* store = Opened()) return store->List(twin);
    return Down();
  }
  Status DeleteAll(std::string_view twin) override {
    if (auto* store = Opened()) return store->DeleteAll(twin);
    return Down();
  }
  Status Sync() override {
    if (auto* store = Opened()) return store->Sync();
    return Down();
  }

  // --- any thread -------------------------------------------------------------------------------

  Status Writable(bool grows) override {
    if (auto* store = Opened()) return store->Writable(grows);
    return Down();
  }
  Result<uint64_t> CountTwins() const override {
    if (auto* store = Opened()) return store->CountTwins();
    return Down();
  }
  Result<ContentCounts> CountContents() const override {
    if (auto* store = Opened()) return store->CountContents();
    return Down();
  }
  StoreStats Stats() const override {
    if (auto* store = Opened()) return store->Stats();
    return {};
  }
  ChangeBounds Changes() const override {
    if (auto* store = Opened()) return store->Changes();
    return {};
  }
  Result<std::vector<Change>> ReadChanges(uint64_t after, size_t max_count, size_t max_bytes) const override {
    if (auto* store = Opened()) return store->ReadChanges(after, max_count, max_bytes);
    return Down();
  }
  Status StartChangeLogAfter(uint64_t seq) override {
    if (auto* store = Opened()) return store->StartChangeLogAfter(seq);
    return Down();
  }
  Result<std::optional<Change>> FindVersion(std::string_view twin, std::string_view doc,
                                            uint64_t version) const override {
    if (auto* store = Opened()) return store->FindVersion(twin, doc, version);
    return Down();
  }
  Result<uint64_t> OldestVersion(std::string_view twin, std::string_view doc) const override {
    if (auto* store = Opened()) return store->OldestVersion(twin, doc);
    return Down();
  }
  Status PutWatch(const WatchRecord& watch) override {
    if (auto* store = Opened()) return store->PutWatch(watch);
    return Down();
  }
  Status DeleteWatch(std::string_view twin, std::string_view doc, std::string_view watcher) override {
    if (auto* store = Opened()) return store->DeleteWatch(twin, doc, watcher);
    return Down();
  }
  // None before the store opens: the engine starts without watches, and its first batch on
  // the store reads them all.
  Result<std::vector<WatchRecord>> ListWatches() const override {
    if (auto* store = Opened()) return store->ListWatches();
    return std::vector<WatchRecord>();
  }

 private:
  static Status Down() { return Status::Unavailable(kUnavailable); }

  SharedPostgresStore* Opened() const { return open_.load(std::memory_order_acquire); }

  // Batch thread: the store, opened now if it can be and its retry is due; nullptr while not.
  SharedPostgresStore* Open() {
    if (SharedPostgresStore* store = Opened()) return store;
    const Clock::time_point now = Clock::now();
    if (now < next_try_) return nullptr;
    auto opened = OpenSharedPostgresStore(options_);
    if (!opened.ok()) {
      retry_ = std::min<Clock::duration>(retry_ * 2, kLongestRetry);
      next_try_ = Clock::now() + retry_;
      // Once for what is not an outage (a schema of an unknown version made meanwhile...):
      // an outage was logged when the broker started.
      if (opened.status().code() != Code::kUnavailable && opened.status().message() != last_error_) {
        last_error_ = opened.status().message();
        Log(LogLevel::kError, "PostgreSQL: " + last_error_ + "; twin requests fail until this is fixed");
      }
      return nullptr;
    }
    store_ = std::move(opened).value();
    open_.store(store_.get(), std::memory_order_release);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - down_since_).count();
    Log(LogLevel::kWarning, "PostgreSQL reached: the twin store is open (unavailable for " + std::to_string(ms) +
                                " ms since the broker started)");
    return store_.get();
  }

  void Log(LogLevel level, const std::string& message) const {
    if (options_.log) options_.log(level, message);
  }

  const PostgresOptions options_;
  const Clock::time_point down_since_;
  // Batch thread only.
  Clock::duration retry_ = kFirstRetry / 2;  // doubled before each wait
  Clock::time_point next_try_;
  std::string last_error_;
  bool started_ = false;
  // Set once, by the batch thread; read from any thread.
  std::unique_ptr<SharedPostgresStore> store_;
  std::atomic<SharedPostgresStore*> open_{nullptr};
};

// Whether libpq can read the URI at all: one it cannot is never going to connect.
bool Parses(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri.c_str(), &error);
  PQfreemem(error);
  if (parsed == nullptr) return false;
  PQconninfoFree(parsed);
  return true;
}

}  // namespace

Result<std::unique_ptr<SharedPostgresStore>> OpenSharedPostgresStoreOrLater(const PostgresOptions& options,
                                                                            Status* deferred_because) {
  auto store = OpenSharedPostgresStore(options);
  if (store.ok()) return store;
  if (store.status().code() != Code::kUnavailable) return store.status();
  if (!Parses(options.uri)) return Status::Internal(store.status().message());
  *deferred_because = store.status();
  return std::unique_ptr<SharedPostgresStore>(std::make_unique<DeferredStore>(options));
}

}  // namespace twins
