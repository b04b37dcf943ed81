#include "tsdb/graphite.hpp"

#include <algorithm>
#include <iterator>

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;

Status CheckOptions(const GraphiteOptions& o) {
  if (o.queue_capacity < 1) return Status::InvalidArgument("queue_capacity", "queue_capacity must be at least 1");
  if (o.batch_size < 1) return Status::InvalidArgument("batch_size", "batch_size must be at least 1");
  if (o.interval_seconds < 1) return Status::InvalidArgument("interval_seconds", "interval_seconds must be at least 1");
  if (o.min_backoff.count() < 1) return Status::InvalidArgument("min_backoff", "min_backoff must be at least 1 ms");
  if (o.max_backoff < o.min_backoff)
    return Status::InvalidArgument("max_backoff", "max_backoff must be >= min_backoff");
  if (o.io_timeout.count() < 1) return Status::InvalidArgument("io_timeout", "io_timeout must be at least 1 ms");
  if (o.stop_timeout.count() < 0) return Status::InvalidArgument("stop_timeout", "stop_timeout cannot be negative");
  return Status::Ok();
}

std::string Seconds(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

}  // namespace

Result<std::unique_ptr<GraphiteSender>> GraphiteSender::Create(GraphiteOptions options) {
  Status s = CheckOptions(options);
  if (!s.ok()) return s;
  auto target = ParseGraphiteUrl(options.url);
  if (!target.ok()) return target.status();
  std::unique_ptr<Transport> transport = target->kind == GraphiteTarget::Kind::kCarbonTcp
                                             ? MakeCarbonTcpTransport(*target)
                                             : MakeHttpTransport(*target, options.interval_seconds);
  return std::unique_ptr<GraphiteSender>(new GraphiteSender(std::move(options), std::move(transport), target->display));
}

GraphiteSender::GraphiteSender(GraphiteOptions options, std::unique_ptr<Transport> transport, std::string target)
    : options_(std::move(options)), transport_(std::move(transport)), target_(std::move(target)) {
  thread_ = std::thread([this] { Run(); });
}

GraphiteSender::~GraphiteSender() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    stop_deadline_ = Clock::now() + options_.stop_timeout;
  }
  wake_.notify_all();
  thread_.join();
}

void GraphiteSender::Push(std::vector<Sample> samples) noexcept {
  if (samples.empty()) return;
  size_t queued = 0;
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    for (; queued < samples.size(); ++queued) {
      if (queue_.size() >= options_.queue_capacity) {
        queue_.pop_front();
        dropped_.fetch_add(1, std::memory_order_relaxed);
      }
      queue_.push_back(std::move(samples[queued]));
    }
  } catch (...) {  // out of memory: what did not fit is lost
    dropped_.fetch_add(samples.size() - queued, std::memory_order_relaxed);
  }
  wake_.notify_one();
}

GraphiteCounters GraphiteSender::counters() const {
  GraphiteCounters c;
  c.sent = sent_.load(std::memory_order_relaxed);
  c.dropped = dropped_.load(std::memory_order_relaxed);
  c.rejected = rejected_.load(std::memory_order_relaxed);
  c.errors = errors_.load(std::memory_order_relaxed);
  c.up = up_.load(std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mutex_);
  c.queued = queue_.size();
  return c;
}

void GraphiteSender::Log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, "graphite: " + message);
}

void GraphiteSender::Reject(uint64_t count, const std::string& why) {
  const uint64_t before = rejected_.fetch_add(count, std::memory_order_relaxed);
  // The 1st, 10th, 100th... rejected sample is logged: visible, never a flood.
  for (uint64_t power = 1; power <= before + count; power *= 10) {
    if (power > before) {
      Log(LogLevel::kWarning, std::to_string(before + count) + " samples rejected so far, latest: " + why);
      return;
    }
  }
}

bool GraphiteSender::TakeBatch(std::vector<EncodedPoint>* batch, Clock::time_point until) {
  std::vector<Sample> taken;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    auto ready = [this] { return stopping_ || !queue_.empty(); };
    if (until == Clock::time_point::max()) {
      wake_.wait(lock, ready);
    } else if (!wake_.wait_until(lock, until, ready)) {
      return false;
    }
    if (queue_.empty() || (stopping_ && Clock::now() >= stop_deadline_)) return false;
    const size_t n = std::min(queue_.size(), options_.batch_size);
    taken.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + n));
    queue_.erase(queue_.begin(), queue_.begin() + n);
  }
  for (const Sample& sample : taken) {
    auto encoded = Encode(sample);
    if (encoded.ok()) {
      batch->push_back(std::move(encoded).value());
    } else {
      Reject(1, encoded.status().message());
    }
  }
  return true;
}

void GraphiteSender::MaybeEndOutage() {
  const Clock::time_point now = Clock::now();
  // (ConnectedSince() may be the clock's minimum: add to it, never subtract it.)
  if (transport_->ConnectedSince() + options_.io_timeout > now || !transport_->Confirmed()) return;
  outage_ = false;
  reachable_.store(true, std::memory_order_relaxed);
  Log(LogLevel::kInfo, "pushing to " + target_ + " again after " + Seconds(now - outage_start_) + "; " +
                           std::to_string(dropped_.load() - dropped_at_start_) + " samples dropped meanwhile");
}

void GraphiteSender::Run() {
  std::vector<EncodedPoint> batch;  // kept across failures: retried before anything newer
  auto backoff = options_.min_backoff;

  for (;;) {
    if (batch.empty()) {
      // Idle during an outage: wake when it may be over, to say so without waiting for samples.
      const Clock::time_point until = outage_
                                          ? std::max(Clock::now(), transport_->ConnectedSince() + options_.io_timeout) +
                                                std::chrono::milliseconds(10)
                                          : Clock::time_point::max();
      if (!TakeBatch(&batch, until)) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          if (stopping_ && queue_.empty()) break;
          if (stopping_ && Clock::now() >= stop_deadline_) break;
        }
        if (outage_) MaybeEndOutage();
        continue;
      }
      if (batch.empty()) continue;  // every sample of it was rejected
    }
    Transport::Deadline deadline = Clock::now() + options_.io_timeout;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) deadline = std::min(deadline, stop_deadline_);
    }
    const Status s = transport_->Send(batch, deadline);
    if (s.ok() || s.code() == Code::kInvalidArgument) {
      up_.store(true, std::memory_order_relaxed);
      if (s.ok()) {
        sent_.fetch_add(batch.size(), std::memory_order_relaxed);
      } else {
        Reject(batch.size(), s.message());
      }
      batch.clear();
      backoff = options_.min_backoff;
      if (outage_) MaybeEndOutage();
      continue;
    }
    errors_.fetch_add(1, std::memory_order_relaxed);
    up_.store(false, std::memory_order_relaxed);
    if (!outage_) {
      outage_ = true;
      reachable_.store(false, std::memory_order_relaxed);
      outage_start_ = Clock::now();
      dropped_at_start_ = dropped_.load();
      Log(LogLevel::kWarning, s.message() + "; queueing up to " + std::to_string(options_.queue_capacity) +
                                  " samples and retrying with back-off");
    }
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) break;  // the last attempt failed: give up on the rest
    wake_.wait_for(lock, backoff, [this] { return stopping_; });
    backoff = std::min(backoff * 2, options_.max_backoff);
  }

  std::lock_guard<std::mutex> lock(mutex_);
  dropped_.fetch_add(batch.size() + queue_.size(), std::memory_order_relaxed);
  queue_.clear();
}

}  // namespace twins
