#include "plugin/change_pusher.hpp"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include "engine/change_json.hpp"
#include "plugin/mqtt_requests.hpp"

namespace twins {
namespace {

// What a waiting change holds in memory, about.
size_t Cost(const Change& change) { return change.data.size() + change.twin.size() + change.doc.size() + 128; }

}  // namespace

ChangePusher::ChangePusher(const Engine& engine, std::string events_topic, std::function<void()> schedule)
    : engine_(engine), events_topic_(std::move(events_topic)), schedule_(std::move(schedule)) {}

void ChangePusher::OnWrite(const WriteEvent& event) noexcept {
  if (event.change != nullptr) Hold(*event.change);
}

void ChangePusher::OnChangeElsewhere(const Change& change) noexcept {
  Hold(change);
  OnDurable(change.seq);  // committed already
}

void ChangePusher::Hold(const Change& change) noexcept {
  try {
    const bool watched = engine_.HasWatches() && engine_.IsWatched(change.twin, change.doc);
    if (!watched && events_topic_.empty()) return;
    Pending pending = std::make_shared<const Change>(change);
    std::lock_guard<std::mutex> lock(mutex_);
    pending_bytes_ += Cost(*pending);
    pending_.push_back(std::move(pending));
    while (pending_.size() > kMaxPending || (pending_bytes_ > kMaxPendingBytes && pending_.size() > 1)) {
      pending_bytes_ -= Cost(*pending_.front());
      pending_.pop_front();
      dropped_.fetch_add(1, std::memory_order_relaxed);
    }
    // A write durable before it returns reported OnDurable already.
    if (change.seq <= durable_ && !scheduled_.exchange(true)) schedule_();
  } catch (...) {
    dropped_.fetch_add(1, std::memory_order_relaxed);  // out of memory: this change is not pushed
  }
}

void ChangePusher::OnDurable(uint64_t seq) noexcept {
  bool ready = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    durable_ = std::max(durable_, seq);
    ready = !pending_.empty() && pending_.front()->seq <= durable_;
  }
  try {
    if (ready && !scheduled_.exchange(true)) schedule_();
  } catch (...) {
    scheduled_ = false;  // the tick takes them
  }
}

void ChangePusher::OnLost(uint64_t seq) noexcept {
  // Writes of a failed group commit were answered with errors: their changes must not go out.
  std::lock_guard<std::mutex> lock(mutex_);
  auto lost = std::remove_if(pending_.begin(), pending_.end(),
                             [&](const Pending& p) { return p->seq > durable_ && p->seq <= seq; });
  for (auto it = lost; it != pending_.end(); ++it) pending_bytes_ -= Cost(**it);
  pending_.erase(lost, pending_.end());
}

std::vector<OutgoingMessage> ChangePusher::TakeReady() {
  scheduled_ = false;
  std::vector<Pending> ready;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!pending_.empty() && pending_.front()->seq <= durable_) {
      pending_bytes_ -= Cost(*pending_.front());
      ready.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
  }
  std::vector<OutgoingMessage> out;
  if (ready.empty()) return out;
  // Events of one twin arrive in seq order, but different twins may interleave: sorted, the
  // feed and each document's pushes follow seq.
  std::sort(ready.begin(), ready.end(), [](const Pending& a, const Pending& b) { return a->seq < b->seq; });
  // One push per (client, twin, document): the latest change's. A device's own change cancels
  // an earlier one waiting for it (its reply showed it a newer version already).
  std::map<std::tuple<std::string, std::string, std::string>, size_t> slot;
  std::vector<OutgoingMessage> pushes;
  std::vector<bool> cancelled;
  for (const Pending& pending : ready) {
    const Change& change = *pending;
    if (!events_topic_.empty()) {
      out.push_back({{}, events_topic_ + "/" + change.twin + "/" + change.doc, ChangeJson(change), 1, {}});
    }
    for (const WatchRecord& watch : engine_.Watches(change.twin, change.doc)) {
      if (watch.since >= change.seq) continue;  // its reply showed this change already
      const bool own = change.source == "mqtt" && change.origin == watch.watcher;
      auto key = std::make_tuple(watch.watcher, change.twin, change.doc);
      auto found = slot.find(key);
      if (own) {
        if (found != slot.end()) cancelled[found->second] = true;
        continue;
      }
      const WatchTarget target = ParseWatchValue(watch.value);
      const bool deleted = change.kind == ChangeKind::kDelete;
      OutgoingMessage push{watch.watcher,
                           std::string(kTwinTopicPrefix) + std::string(target.spelling) + "/" + change.doc +
                               (deleted ? "/deleted" : "/updated"),
                           deleted ? "{\"version\":" + std::to_string(change.version) + "}"
                                   : DocumentJson({change.version, change.data, change.time_ms}),
                           target.qos, change.twin};
      if (found != slot.end()) {
        pushes[found->second] = std::move(push);
        cancelled[found->second] = false;
      } else {
        slot.emplace(std::move(key), pushes.size());
        pushes.push_back(std::move(push));
        cancelled.push_back(false);
      }
    }
  }
  for (size_t i = 0; i < pushes.size(); ++i) {
    if (!cancelled[i]) out.push_back(std::move(pushes[i]));
  }
  return out;
}

}  // namespace twins
