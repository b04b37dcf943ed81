// The change pusher over a real engine and RocksDB: what waits for the broker thread is bounded.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "engine/engine.hpp"
#include "plugin/change_pusher.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

// A broker thread that never comes: large documents pile up until the pusher drops the oldest.
// The bound is on their bytes, not only their number (100 000 changes of 64 KiB are 6.5 GB).
TEST(ChangePusherTest, ChangesWaitingForTheBrokerThreadAreBoundedInBytes) {
  test::TempDir dir;
  RocksDbOptions options;
  options.path = dir.sub("db");
  auto store = OpenRocksDbStore(options);
  ASSERT_TRUE(store.ok()) << store.status().message();
  Engine engine(WithWriteBehindCache(std::move(store).value(), 1 << 20), Limits{});
  ChangePusher pusher(engine, "events", [] {});
  engine.AddObserver(&pusher);
  const std::string big = R"({"data":{"pad":")" + std::string(60 << 10, 'x') + "\"}}";
  auto request = ParseWriteRequest(big, engine.limits());
  ASSERT_TRUE(request.ok()) << request.status().message();
  const size_t writes = ChangePusher::kMaxPendingBytes / (60 << 10) + 200;
  for (size_t n = 0; n < writes; ++n) ASSERT_TRUE(engine.Put("t", "d" + std::to_string(n % 8), *request).ok());
  EXPECT_GT(pusher.dropped(), 0u);
  const auto ready = pusher.TakeReady();
  size_t bytes = 0;
  for (const OutgoingMessage& message : ready) bytes += message.payload.size();
  EXPECT_LE(bytes, ChangePusher::kMaxPendingBytes + (64 << 10) * 4);  // the event JSON adds little
  ASSERT_FALSE(ready.empty());
  EXPECT_NE(ready.back().payload.find("\"seq\":" + std::to_string(writes)), std::string::npos);  // the newest kept
  engine.RemoveObserver(&pusher);
}

}  // namespace
}  // namespace twins
