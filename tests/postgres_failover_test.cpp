// Failover on real servers (tests/support/postgres.hpp): a primary whose commits wait for a
// streaming standby (synchronous_standby_names = 'ANY 1 (standby)'), and one PostgresStore on
// both through a multi-host URI with target_session_attrs=read-write. Writers are acknowledged
// while the primary runs; the primary is killed (SIGKILL, every process at once) mid-load and the
// standby promoted. The store finds the new primary by itself, and every write it acknowledged
// is on it: 0 acknowledged writes lost. The writes refused meanwhile are counted and timed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres_store.hpp"
#include "tests/support/postgres.hpp"

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kWriters = 4;
// How soon a writer tries a refused write again, as a device would.
constexpr milliseconds kRetryAfter(10);

int64_t Ms(Clock::duration duration) { return std::chrono::duration_cast<milliseconds>(duration).count(); }

std::string Data(int writer, uint64_t version) {
  return R"({"writer":)" + std::to_string(writer) + R"(,"version":)" + std::to_string(version) + "}";
}

// Writers, one twin each ("writer-N", document "d"), putting versions 1, 2, 3… one at a time
// with their change-log entries; a refused version is tried again (with a new seq) until
// acknowledged.
class Load {
 public:
  struct Acknowledged {
    uint64_t version;
    uint64_t seq;
  };

  explicit Load(DocumentStore& store) : store_(store), acknowledged_(kWriters), attempted_(kWriters, 0) {
    for (int writer = 0; writer < kWriters; ++writer) threads_.emplace_back([this, writer] { Write(writer); });
  }
  ~Load() { Stop(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void Stop() {
    stop_ = true;
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }

  // Until `count` more writes than now are acknowledged; false after 60 s.
  bool AwaitAcknowledged(uint64_t count) {
    std::unique_lock<std::mutex> lock(mutex_);
    const uint64_t target = total_ + count;
    return changed_.wait_for(lock, std::chrono::seconds(60), [&] { return total_ >= target; });
  }

  // Read once stopped.
  const std::vector<Acknowledged>& acknowledged(int writer) const { return acknowledged_[writer]; }
  uint64_t attempted(int writer) const { return attempted_[writer]; }
  uint64_t total() const { return total_; }
  uint64_t refused() const { return refused_; }
  Clock::time_point first_refused() const { return first_refused_; }
  Clock::time_point last_refused() const { return last_refused_; }
  const std::set<std::string>& reasons() const { return reasons_; }

 private:
  void Write(int writer) {
    const std::string twin = "writer-" + std::to_string(writer);
    uint64_t version = 1;
    while (!stop_) {
      const uint64_t seq = next_seq_++;
      auto change = std::make_shared<Change>();
      change->seq = seq;
      change->twin = twin;
      change->doc = "d";
      change->kind = ChangeKind::kPut;
      change->version = version;
      change->data = Data(writer, version);
      std::vector<DocumentWrite> batch;
      batch.push_back({twin, "d", StoredDocument{version, change->data, 1}, change});
      Status written = store_.Write(std::move(batch));
      const auto now = Clock::now();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        attempted_[writer] = version;
        if (written.ok()) {
          acknowledged_[writer].push_back({version++, seq});
          ++total_;
          changed_.notify_all();
          continue;
        }
        if (refused_++ == 0) first_refused_ = now;
        last_refused_ = now;
        reasons_.insert(written.message().substr(0, 60));
      }
      std::this_thread::sleep_for(kRetryAfter);
    }
  }

  DocumentStore& store_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> next_seq_{1};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::vector<Acknowledged>> acknowledged_;  // per writer
  std::vector<uint64_t> attempted_;                      // per writer: the last version tried
  uint64_t total_ = 0;
  uint64_t refused_ = 0;
  Clock::time_point first_refused_, last_refused_;
  std::set<std::string> reasons_;  // the start of each distinct error
  std::vector<std::thread> threads_;
};

// A primary with its synchronous standby streaming, and a store on both (the multi-host URI).
class PostgresFailoverTest : public testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(primary_.ok()) << primary_.error();
    standby_ = std::make_unique<test::Postgres>(StandbyOf(primary_));
    ASSERT_TRUE(standby_->ok()) << standby_->error();
    ASSERT_TRUE(primary_.AwaitStandby()) << primary_.error();
    options_.uri = "postgresql://postgres@127.0.0.1:" + std::to_string(primary_.port()) +
                   ",127.0.0.1:" + std::to_string(standby_->port()) + "/postgres?target_session_attrs=read-write";
    options_.log = [this](LogLevel, const std::string& line) {
      std::lock_guard<std::mutex> lock(lines_mutex_);
      lines_.push_back(line);
    };
    auto opened = OpenPostgresStore(options_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    store_ = std::move(opened).value();
  }

  static test::ServerOptions Synchronous() {
    test::ServerOptions options;
    options.synchronous_standby = true;
    return options;
  }
  static test::ServerOptions StandbyOf(const test::Postgres& primary) {
    test::ServerOptions options;
    options.standby_of = &primary;
    return options;
  }

  test::Postgres primary_{Synchronous()};
  std::unique_ptr<test::Postgres> standby_;
  PostgresOptions options_;
  std::unique_ptr<DocumentStore> store_;
  std::mutex lines_mutex_;
  std::vector<std::string> lines_;
};

TEST_F(PostgresFailoverTest, NoAcknowledgedWriteIsLostWhenTheSynchronousStandbyIsPromoted) {
  Load load(*store_);
  ASSERT_TRUE(load.AwaitAcknowledged(200)) << "the writers were not acknowledged on the primary";
  const auto killed_at = Clock::now();
  primary_.Kill();
  ASSERT_TRUE(standby_->Promote()) << standby_->error();
  const auto promoted_at = Clock::now();
  // The same store, not reopened, writes to the new primary.
  ASSERT_TRUE(load.AwaitAcknowledged(200)) << "no write acknowledged after the promotion";
  load.Stop();

  // What the promoted server holds, read through a store of its own.
  PostgresOptions direct;
  direct.uri = standby_->Uri();
  auto promoted = OpenPostgresStore(direct);
  ASSERT_TRUE(promoted.ok()) << promoted.status().message();
  auto changes = (*promoted)->ReadChanges(0, SIZE_MAX, SIZE_MAX);
  ASSERT_TRUE(changes.ok()) << changes.status().message();
  std::map<uint64_t, const Change*> by_seq;
  std::map<std::string, std::set<uint64_t>> versions;  // per twin, as the change log has them
  for (const Change& change : *changes) {
    by_seq[change.seq] = &change;
    versions[change.twin].insert(change.version);
  }
  uint64_t lost = 0;
  for (int writer = 0; writer < kWriters; ++writer) {
    const std::string twin = "writer-" + std::to_string(writer);
    for (const Load::Acknowledged& write : load.acknowledged(writer)) {
      const auto found = by_seq.find(write.seq);
      if (found == by_seq.end() || found->second->twin != twin || found->second->version != write.version ||
          found->second->data != Data(writer, write.version)) {
        ++lost;
      }
    }
    // The document is at its last acknowledged version, or at the one tried after it when
    // that one was refused (its outcome unknown); no version is missing before it.
    ASSERT_FALSE(load.acknowledged(writer).empty());
    const uint64_t acknowledged = load.acknowledged(writer).back().version;
    auto document = (*promoted)->Get(twin, "d");
    ASSERT_TRUE(document.ok() && document->has_value()) << twin;
    const uint64_t version = (*document)->version;
    EXPECT_GE(version, acknowledged) << twin;
    EXPECT_LE(version, load.attempted(writer)) << twin;
    EXPECT_EQ((*document)->data, Data(writer, version)) << twin;
    EXPECT_EQ(versions[twin].size(), version) << twin << ": versions 1 to " << version << " in the change log";
    EXPECT_EQ(*versions[twin].rbegin(), version) << twin;
  }
  EXPECT_EQ(lost, 0u) << "of " << load.total() << " acknowledged writes";

  // Writes were refused from the kill until shortly after the promotion, not beyond.
  ASSERT_GT(load.refused(), 0u);
  EXPECT_LT(load.last_refused(), promoted_at + std::chrono::seconds(2));
  std::string reasons;
  for (const std::string& reason : load.reasons()) reasons += "\n  " + reason;
  std::printf(
      "%llu writes acknowledged, %llu lost; %llu refused (each writer retrying every %lld ms) for %lld ms, "
      "from %lld ms after the kill to %lld ms after the promotion (which took %lld ms); reasons:%s\n",
      static_cast<unsigned long long>(load.total()), static_cast<unsigned long long>(lost),
      static_cast<unsigned long long>(load.refused()), static_cast<long long>(kRetryAfter.count()),
      static_cast<long long>(Ms(load.last_refused() - load.first_refused())),
      static_cast<long long>(Ms(load.first_refused() - killed_at)),
      static_cast<long long>(Ms(load.last_refused() - promoted_at)),
      static_cast<long long>(Ms(promoted_at - killed_at)), reasons.c_str());
  RecordProperty("acknowledged", static_cast<int>(load.total()));
  RecordProperty("refused", static_cast<int>(load.refused()));
  RecordProperty("refused_for_ms", static_cast<int>(Ms(load.last_refused() - load.first_refused())));
  RecordProperty("promotion_ms", static_cast<int>(Ms(promoted_at - killed_at)));

  // One log line when the outage started, one when it ended.
  std::lock_guard<std::mutex> lock(lines_mutex_);
  ASSERT_EQ(lines_.size(), 2u);
  EXPECT_NE(lines_[0].find("calls fail until it is back"), std::string::npos) << lines_[0];
  EXPECT_NE(lines_[1].find("PostgreSQL connection restored"), std::string::npos) << lines_[1];
}

// Without a promotion there is no server to write to: the dead primary refuses connections and
// the standby is read-only (target_session_attrs=read-write). Calls fail at once, saying both.
TEST_F(PostgresFailoverTest, WithoutAPromotionCallsFailAtOnceNamingBothServers) {
  ASSERT_TRUE(store_->Put("dev1", "d", {1, "{}", 1}).ok());
  primary_.Kill();
  auto lost = store_->Get("dev1", "d");
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.status().message().rfind("PostgreSQL connection lost: ", 0), 0u) << lost.status().message();
  const auto start = Clock::now();
  Status refused = store_->Put("dev1", "d", {2, "{}", 2});
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  ASSERT_FALSE(refused.ok());
  const std::string primary_refused = "PostgreSQL cannot be reached: connection to server at \"127.0.0.1\", port " +
                                      std::to_string(primary_.port()) + " failed: Connection refused";
  EXPECT_EQ(refused.message().rfind(primary_refused, 0), 0u) << refused.message();
  const std::string standby_read_only = "connection to server at \"127.0.0.1\", port " +
                                        std::to_string(standby_->port()) + " failed: session is read-only";
  EXPECT_NE(refused.message().find(standby_read_only), std::string::npos) << refused.message();
  EXPECT_FALSE(store_->Writable(true).ok());
}

}  // namespace
}  // namespace twins
