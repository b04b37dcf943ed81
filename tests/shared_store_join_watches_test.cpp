// Found in review: SharedPostgresStore::Join reads the watches of a twin a joining call may write
// only when the batch has not listed that twin's documents (names_): a twin listed by a read
// call earlier in the batch (List, a miss read in the transaction) keeps the engine's watches,
// which may be older than the store's (another broker's watch, committed before this batch
// took the lock, whose notification this broker has not taken yet: Wait runs only when no call
// is queued). Begin, for the same twin written by a call of its own, reads them.
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include <string>

#include "store/postgres_shared_store.hpp"
#include "tests/support/postgres.hpp"

namespace twins {
namespace {

PostgresOptions Options() {
  PostgresOptions options;
  options.uri = test::SharedPostgres().Uri();
  options.schema = "review_join_watches";
  options.timeout_ms = 5000;
  return options;
}

// Another broker watches twin x (committed).
void AnotherBrokerWatchesX() {
  auto two = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(two.ok()) << two.status().message();
  BatchReads write_x;
  write_x.lock = true;
  write_x.twins = {"x"};
  ASSERT_TRUE((*two)->Begin(write_x).ok());
  ASSERT_TRUE((*two)->PutWatch({"x", "d", "watcher", "v"}).ok());
  ASSERT_TRUE((*two)->Sync().ok());
}

// Broker one: a batch with the lock (a write to twin y), in which a read call may list twin x
// first (the case that was missed); then a call that may write twin x (a watch, an unwatch)
// joins: it gets x's watches, as Begin would have read them for it.
class JoinWatchesTest : public testing::TestWithParam<bool> {};

TEST_P(JoinWatchesTest, AJoinedWriterGetsTheWatchesOfItsTwin) {
  const bool listed_first = GetParam();
  ASSERT_TRUE(test::SharedPostgres().ok()) << test::SharedPostgres().error();
  auto one = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(one.ok()) << one.status().message();
  AnotherBrokerWatchesX();
  BatchReads write_y;
  write_y.lock = true;
  write_y.twins = {"y"};
  auto start = (*one)->Begin(write_y);
  ASSERT_TRUE(start.ok()) << start.status().message();
  if (listed_first) {
    ASSERT_TRUE((*one)->List("x").ok());
  }
  BatchReads joining;
  joining.lock = true;
  joining.twins = {"x"};
  auto watches = (*one)->Join(joining);
  ASSERT_TRUE(watches.ok()) << watches.status().message();
  auto found = watches->find("x");
  EXPECT_TRUE(found != watches->end() && found->second.size() == 1)
      << "Join did not read twin x's watches: the joined call runs on the engine's possibly stale watches of x";
  (*one)->Rollback();
}
INSTANTIATE_TEST_SUITE_P(SharedStoreJoinWatches, JoinWatchesTest, testing::Values(true, false),
                         [](const testing::TestParamInfo<bool>& info) {
                           return info.param ? "TheBatchListedItsTwin" : "TheBatchDidNotListItsTwin";
                         });

// A batch already failed (a statement of one of its calls failed: here its connection was
// ended) still takes calls: Join answers Ok when they need nothing read, so they run in a batch
// whose Sync can only fail, where the next batch (a new connection) would have run them.
TEST(SharedStoreJoinWatches, ABatchThatFailedAlreadyTakesNoMoreCalls) {
  ASSERT_TRUE(test::SharedPostgres().ok()) << test::SharedPostgres().error();
  auto one = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(one.ok()) << one.status().message();
  BatchReads write_x;
  write_x.lock = true;
  write_x.twins = {"x"};
  write_x.documents = {{"x", "d"}};
  ASSERT_TRUE((*one)->Begin(write_x).ok());
  PGconn* admin = PQconnectdb(test::SharedPostgres().Uri().c_str());
  ASSERT_EQ(PQstatus(admin), CONNECTION_OK);
  PGresult* ended = PQexec(admin,
                           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction'"
                           " AND pid <> pg_backend_pid()");
  PQclear(ended);
  PQfinish(admin);
  auto miss = (*one)->Get("x", "other");  // a miss: read in the transaction, which is gone
  ASSERT_FALSE(miss.ok());
  auto joined = (*one)->Join(write_x);  // what it needs is read already
  EXPECT_FALSE(joined.ok()) << "a call joined a batch that had failed already: it will be answered with the failure";
  EXPECT_FALSE((*one)->Sync().ok());
}

}  // namespace
}  // namespace twins
