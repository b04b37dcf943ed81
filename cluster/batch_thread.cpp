#include "cluster/batch_thread.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <iterator>
#include <system_error>
#include <utility>

#include "engine/names.hpp"

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;

template <typename T>
void SortUnique(std::vector<T>* values) {
  std::sort(values->begin(), values->end());
  values->erase(std::unique(values->begin(), values->end()), values->end());
}

// What the calls will read, for Begin's one round trip. Names the engine would refuse are
// left out: they never reach the database.
BatchReads ReadsOf(const std::vector<BatchThread::Call>& calls, const std::set<std::string>& watch_twins) {
  BatchReads reads;
  for (const auto& call : calls) {
    const BatchHint& hint = call.hint;
    if (!ValidateTwinId(hint.twin).ok()) continue;
    if (!hint.doc.empty() && ValidateDocumentName(hint.doc).ok()) reads.documents.emplace_back(hint.twin, hint.doc);
    if (!hint.writes) continue;
    reads.lock = true;
    reads.twins.push_back(hint.twin);  // a creation counts the twin's documents; a watch its watches
    reads.documents.emplace_back(hint.twin, kConfigDocument);  // its time series
  }
  reads.twins.insert(reads.twins.end(), watch_twins.begin(), watch_twins.end());
  SortUnique(&reads.documents);
  SortUnique(&reads.twins);
  return reads;
}

}  // namespace

BatchThread::BatchThread(Engine& engine, SharedPostgresStore& store, std::chrono::milliseconds deadline)
    : engine_(engine), store_(store), deadline_(deadline), wake_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (wake_fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
}

BatchThread::~BatchThread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  for (Call& call : queue_) {
    if (call.settled) call.settled(Status::Unavailable("the broker is stopping"));
  }
  close(wake_fd_);
}

void BatchThread::Start() {
  thread_ = std::thread([this] { Loop(); });
}

Status BatchThread::RunAndWait(const BatchHint& hint, const std::function<void()>& work) {
  if (OnBatchThread()) {
    work();
    return Status::Ok();
  }
  std::promise<Status> done;
  std::future<Status> settled = done.get_future();
  Submit(
      hint, [&work] { work(); }, [&done](const Status& status) { done.set_value(status); });
  return settled.get();
}

void BatchThread::Submit(BatchHint hint, std::function<void()> work, std::function<void(const Status&)> settled) {
  std::unique_lock<std::mutex> lock(mutex_);
  const Status refused = stopping_                     ? Status::Unavailable("the broker is stopping")
                         : queue_.size() >= kMaxQueued ? Status::Unavailable("the twin store is busy; retry later")
                                                       : Status::Ok();
  if (refused.ok()) {
    queue_.push_back({std::move(hint), std::move(work), std::move(settled), Clock::now()});
    lock.unlock();
    Wake();
    return;
  }
  lock.unlock();
  settled(refused);
}

size_t BatchThread::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queue_.size();
}

void BatchThread::Wake() {
  const uint64_t one = 1;
  if (write(wake_fd_, &one, sizeof one) < 0) {
    // The counter is full (it never is: each wait reads it back to 0); the thread wakes anyway.
  }
}

std::vector<BatchThread::Call> BatchThread::Take(const std::vector<Call>& batch) {
  size_t count = batch.size(), bytes = 0;
  for (const Call& call : batch) bytes += call.hint.bytes;
  std::vector<Call> calls;
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return calls;
  while (!queue_.empty() && count < kMaxBatch && (count == 0 || bytes < kMaxBatchBytes)) {
    bytes += queue_.front().hint.bytes;
    ++count;
    calls.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return calls;
}

void BatchThread::Loop() {
  Clock::time_point last_batch = Clock::now();
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    std::vector<Call> calls = Take({});
    if (calls.empty()) {
      const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_batch);
      StoreNotices notices = store_.Wait(wake_fd_, std::max(kPoll - idle, std::chrono::milliseconds(0)));
      watch_twins_.insert(notices.watch_twins.begin(), notices.watch_twins.end());
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (stopping_) return;
        if (!queue_.empty()) continue;
      }
      // Nothing to run: catch up on other brokers' changes when told of some, or when the
      // slow poll is due (notifications may be missing, or lost while disconnected).
      if (!notices.changes && watch_twins_.empty() && Clock::now() - last_batch < kPoll) continue;
    }
    RunBatch(calls);
    last_batch = Clock::now();
  }
}

// Calls that waited past the deadline (the store was slow or down) are answered now.
void BatchThread::Expire(std::vector<Call>& calls) {
  const Clock::time_point now = Clock::now();
  auto expired = std::stable_partition(calls.begin(), calls.end(),
                                       [&](const Call& call) { return now - call.queued < deadline_; });
  for (auto it = expired; it != calls.end(); ++it) {
    try {
      if (it->settled) it->settled(Status::Unavailable("the twin store is busy; retry later"));
    } catch (...) {
      // As in RunBatch: the others still get theirs.
    }
  }
  calls.erase(expired, calls.end());
}

void BatchThread::RunCalls(std::vector<Call>& calls) {
  for (Call& call : calls) {
    try {
      call.work();
    } catch (...) {
      // The call's result stays unset: its caller reports an internal error.
    }
  }
}

void BatchThread::Requeue(std::vector<Call>& calls, size_t from) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (size_t i = calls.size(); i > from; --i) queue_.push_front(std::move(calls[i - 1]));
  calls.resize(from);
}

// Calls are answered in the order they were queued (a connection's replies keep the order of
// its requests): a late call is never answered before the batch's own calls, which are
// answered at its Sync. So nothing here answers a call: what cannot join goes back to the
// queue, for the next batch to run or to expire.
void BatchThread::Join(std::vector<Call>& calls) {
  for (int round = 0; round < kMaxJoins; ++round) {
    std::vector<Call> late = Take(calls);
    const Clock::time_point now = Clock::now();
    auto expired = std::find_if(late.begin(), late.end(),
                                [&](const Call& call) { return now - call.queued >= deadline_; });
    const size_t joining = static_cast<size_t>(expired - late.begin());
    Requeue(late, joining);  // from the first expired one on: the next batch answers them in order
    if (late.empty()) return;
    const Clock::time_point sent = Clock::now();
    auto watches = store_.Join(ReadsOf(late, {}));
    const bool slow = Clock::now() - sent > deadline_ / 10;
    if (!watches.ok()) {  // the batch failed (Sync says so to its calls); these did not run
      Requeue(late, 0);
      return;
    }
    calls_.fetch_add(late.size(), std::memory_order_relaxed);
    for (const auto& [twin, list] : *watches) engine_.ReplaceWatches(twin, list);
    RunCalls(late);
    std::move(late.begin(), late.end(), std::back_inserter(calls));
    if (slow) return;
  }
}

void BatchThread::RunBatch(std::vector<Call>& calls) {
  Expire(calls);
  auto settle_all = [&calls](const Status& status) {
    for (Call& call : calls) {
      try {
        if (call.settled) call.settled(status);
      } catch (...) {
        // A caller's own failure to hand its result on; the others still get theirs.
      }
    }
  };
  batches_.fetch_add(1, std::memory_order_relaxed);
  calls_.fetch_add(calls.size(), std::memory_order_relaxed);
  const BatchReads reads = ReadsOf(calls, watch_twins_);
  const Clock::time_point begun = Clock::now();
  auto start = store_.Begin(reads);
  // Each round trip has the whole deadline: after a slow one (the server is struggling) no
  // call joins, so that a batch's calls are answered within about three deadlines, as before.
  const bool slow = Clock::now() - begun > deadline_ / 10;
  if (!start.ok()) {
    failed_.fetch_add(1, std::memory_order_relaxed);
    settle_all(start.status());
    return;
  }
  watch_twins_.clear();
  // The watches first: the changes heard next are pushed to the watches as they are now.
  if (start->resync) {
    engine_.ReplaceAllWatches(start->watches);
  } else {
    for (const auto& [twin, watches] : start->watches) engine_.ReplaceWatches(twin, watches);
  }
  engine_.CatchUp(start->elsewhere, start->locked_seq, start->gap || start->resync);
  RunCalls(calls);
  if (reads.lock && !slow) Join(calls);
  if (!engine_.Sync(settle_all).ok()) failed_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace twins
