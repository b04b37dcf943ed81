// Change propagation to MQTT: the pushes to watching devices and the optional event feed.
// Free of broker calls: it decides what to send; plugin.cpp publishes it on the broker thread.
//
//   push to a watcher:  $SCW/twins/<twin as the watch spelled it>/<doc>/updated  {"version":V,"data":{…}}
//                       $SCW/twins/<twin as spelled>/<doc>/deleted              {"version":V}
//   event feed:         <events_topic>/<twin_id>/<doc>                            ChangeJson (every change)
//
// Exact across reconnects because a push only ever carries news: a change goes out once
// durable, to the watches that exist when it is published and were registered before it
// (Engine::Watches' `since`: the watch reply showed every earlier change), never to the
// device whose MQTT request made it, and changes of one document waiting together are
// coalesced into the latest one — so a device never receives an older version after a newer
// one, its own replies included, nor a push after its unwatch was answered.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace twins {

struct OutgoingMessage {
  std::string client_id;  // empty: to the event feed's subscribers
  std::string topic;
  std::string payload;
  int qos = 0;
  std::string twin;  // a push's: the twin of the watch (its client id may be another's by then)
};

class ChangePusher final : public WriteObserver {
 public:
  // `schedule` is called (from any thread, at most once until the next TakeReady) when
  // changes became durable: the caller then runs TakeReady on the broker thread.
  // `events_topic` empty: no event feed.
  ChangePusher(const Engine& engine, std::string events_topic, std::function<void()> schedule);

  void OnWrite(const WriteEvent& event) noexcept override;
  // Another broker's change (a store shared by several): pushed and fed like one of ours.
  void OnChangeElsewhere(const Change& change) noexcept override;
  void OnDurable(uint64_t seq) noexcept override;
  void OnLost(uint64_t seq) noexcept override;

  // What to publish for every change made durable so far, in seq order.
  std::vector<OutgoingMessage> TakeReady();

  // Changes dropped because more than kMaxPending, or kMaxPendingBytes of documents, waited
  // (the broker thread stalled).
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

  static constexpr size_t kMaxPending = 100000;
  static constexpr size_t kMaxPendingBytes = 64 << 20;

 private:
  using Pending = std::shared_ptr<const Change>;

  // Keeps a copy of the change until it is durable, if a watch or the feed wants it.
  void Hold(const Change& change) noexcept;

  const Engine& engine_;
  const std::string events_topic_;
  const std::function<void()> schedule_;
  std::mutex mutex_;  // guards pending_, pending_bytes_ and durable_
  std::deque<Pending> pending_;
  size_t pending_bytes_ = 0;  // of the documents in pending_
  uint64_t durable_ = 0;
  std::atomic<bool> scheduled_{false};
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace twins
