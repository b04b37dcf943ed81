// Frees the messages Mosquitto leaks when it drops a plugin's publish to a client.
//
// Why: mosquitto_broker_publish_copy() stores the message before queueing it for the client
// (src/loop.c single_publish()); when the client's queue is full (a client that never reads)
// db__message_insert() drops it and nothing frees the stored copy, whose reference count is 0:
// the broker only frees such messages in db__msg_store_compact(), which 2.0.x never calls and
// 2.1-develop calls only at start. So every dropped reply stays in memory (58.8 KB per 60 KB
// reply measured). Debian's mosquitto exports db__msg_store_compact and the dropped-message
// counter: when the counter moved and the plugin published since, this calls the compaction
// on the broker thread at the end of a loop pass, when no message is held unreferenced on
// purpose. The walk visits every stored message (its cost: docs/performance.md), so it runs at
// most every 10 ms and, up to 100 ms, no sooner than 20 times its last duration after it: at
// most 5 % of the broker thread while a walk takes less than 5 ms.
// Brokers that do not export them (upstream builds export only src/linker.syms) keep the
// leak; the rate limit and max_queued_* settings then bound how fast it grows.
#pragma once

#include <chrono>

namespace twins {

class StoreReclaimer {
 public:
  StoreReclaimer();
  bool available() const { return compact_ != nullptr && dropped_ != nullptr; }
  // Broker thread only: the plugin handed the broker a message to send.
  void NotePublished() { published_ = true; }
  // Broker thread only, from the tick. True when it compacted.
  bool OnTick(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

 private:
  void (*compact_)() = nullptr;
  const unsigned long* dropped_ = nullptr;
  unsigned long seen_ = 0;
  bool published_ = false;
  std::chrono::steady_clock::time_point next_{};
};

}  // namespace twins
