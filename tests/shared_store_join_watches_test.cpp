// Review (s22): SharedPostgresStore::Join reads the watches of a twin a joining call may write
// only when the batch has not listed that twin's documents (names_): a twin listed by a read
// call earlier in the batch (List, a miss read in the transaction) keeps the engine's watches,
// which may be older than the store's (another broker's watch, committed before this batch
// took the lock, whose notification this broker has not taken yet: Wait runs only when no call
// is queued). Begin, for the same twin written by a call of its own, reads them.
#include <gtest/gtest.h>

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

TEST(SharedStoreJoinWatches, AJoinedWriterGetsTheWatchesOfATwinTheBatchOnlyListed) {
  ASSERT_TRUE(test::SharedPostgres().ok()) << test::SharedPostgres().error();
  auto one = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(one.ok()) << one.status().message();
  auto two = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(two.ok()) << two.status().message();

  // Broker two watches twin x (committed).
  BatchReads write_x;
  write_x.lock = true;
  write_x.twins = {"x"};
  ASSERT_TRUE((*two)->Begin(write_x).ok());
  ASSERT_TRUE((*two)->PutWatch({"x", "d", "watcher", "v"}).ok());
  ASSERT_TRUE((*two)->Sync().ok());

  // Broker one: a batch with the lock (a write to twin y), in which a read call lists twin x.
  BatchReads write_y;
  write_y.lock = true;
  write_y.twins = {"y"};
  auto start = (*one)->Begin(write_y);
  ASSERT_TRUE(start.ok()) << start.status().message();
  auto names = (*one)->List("x");
  ASSERT_TRUE(names.ok());
  // A call that may write twin x (a watch, an unwatch) joins: what the engine needs of x's
  // watches, as Begin would have read them for it.
  BatchReads joining;
  joining.lock = true;
  joining.twins = {"x"};
  auto watches = (*one)->Join(joining);
  ASSERT_TRUE(watches.ok()) << watches.status().message();
  auto found = watches->find("x");
  EXPECT_TRUE(found != watches->end() && found->second.size() == 1)
      << "Join did not read twin x's watches (the batch had listed x): the joined call runs on the engine's "
         "possibly stale watches of x";
  (*one)->Rollback();
}

// The control: the same batch without the List reads them.
TEST(SharedStoreJoinWatches, AJoinedWriterGetsTheWatchesOfATwinTheBatchDidNotList) {
  ASSERT_TRUE(test::SharedPostgres().ok()) << test::SharedPostgres().error();
  auto one = OpenSharedPostgresStore(Options());
  ASSERT_TRUE(one.ok()) << one.status().message();
  BatchReads write_y;
  write_y.lock = true;
  write_y.twins = {"y"};
  ASSERT_TRUE((*one)->Begin(write_y).ok());
  BatchReads joining;
  joining.lock = true;
  joining.twins = {"x"};
  auto watches = (*one)->Join(joining);
  ASSERT_TRUE(watches.ok()) << watches.status().message();
  auto found = watches->find("x");
  EXPECT_TRUE(found != watches->end() && found->second.size() == 1);
  (*one)->Rollback();
}

}  // namespace
}  // namespace twins
