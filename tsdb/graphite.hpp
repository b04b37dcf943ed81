// Pushes samples to Graphite without ever making the caller wait for the network.
//
// Push() appends to a bounded in-memory queue and returns; one sender thread takes batches
// from it, encodes them (series.hpp) and delivers them (transport.hpp). When the target is
// unreachable or failing, the batch in hand is retried with exponential back-off (capped),
// the queue keeps filling and, when full, drops its oldest samples (counted). An outage
// produces exactly two log lines: one when it starts (with the cause), one when it ends (with
// the samples dropped meanwhile). It ends once deliveries are confirmed on a connection that
// has lasted io_timeout (see Transport::Confirmed): a reconnection that takes a few writes and
// fails again (a peer that never reads, resets, times out) is the same outage.
//
// Thread-safety: Push() and counters() may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "tsdb/sample.hpp"
#include "common/status.hpp"
#include "tsdb/transport.hpp"

namespace twins {

struct GraphiteOptions {
  std::string url;                               // see target.hpp: tcp://host:port or https://USER:TOKEN@host/path
  size_t queue_capacity = 100000;                // samples held while the target is unreachable
  size_t batch_size = 500;                       // samples per TCP write or HTTP POST
  int interval_seconds = 10;                     // the "interval" field of HTTP points
  std::chrono::milliseconds min_backoff{250};    // first retry delay after a failure
  std::chrono::milliseconds max_backoff{30000};  // the delay doubles up to this
  std::chrono::milliseconds io_timeout{5000};    // bound of one connect, write or POST
  std::chrono::milliseconds stop_timeout{1000};  // the destructor's bound for flushing the queue
  LogFn log;                                     // may be empty
};

struct GraphiteCounters {
  uint64_t sent = 0;      // samples delivered
  uint64_t dropped = 0;   // samples lost: queue full (the oldest go) or still queued at stop
  uint64_t rejected = 0;  // samples that cannot be sent: too long to encode, or refused by the target
  uint64_t errors = 0;    // failed delivery attempts (each retried)
  size_t queued = 0;      // samples waiting in the queue (not the batch being sent)
  bool up = true;         // the last delivery attempt succeeded (true before the first)
};

class GraphiteSender final : public SampleSink {
 public:
  // Checks the options (InvalidArgument naming the option) and starts the sender thread.
  static Result<std::unique_ptr<GraphiteSender>> Create(GraphiteOptions options);

  // Stops the thread after trying to deliver what is queued within options.stop_timeout.
  ~GraphiteSender() override;
  GraphiteSender(const GraphiteSender&) = delete;
  GraphiteSender& operator=(const GraphiteSender&) = delete;

  void Push(std::vector<Sample> samples) noexcept override;
  GraphiteCounters counters() const;
  // The target URL without credentials, for logs.
  const std::string& target() const { return target_; }
  // False from the start of an outage to its end.
  bool reachable() const { return reachable_.load(std::memory_order_relaxed); }

 private:
  GraphiteSender(GraphiteOptions options, std::unique_ptr<Transport> transport, std::string target);
  void Run();
  // Moves up to batch_size encoded samples into `batch`; false when stopping and empty, or
  // when `until` passes first.
  bool TakeBatch(std::vector<EncodedPoint>* batch, std::chrono::steady_clock::time_point until);
  // During an outage: whether it is over (see the header comment); logs its end if so.
  void MaybeEndOutage();
  void Log(LogLevel level, const std::string& message) const;
  void Reject(uint64_t count, const std::string& why);

  const GraphiteOptions options_;
  const std::unique_ptr<Transport> transport_;
  const std::string target_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Sample> queue_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point stop_deadline_;

  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<bool> up_{true};  // the last attempt succeeded (for the metrics)
  std::atomic<bool> reachable_{true};

  // The sender thread's own.
  bool outage_ = false;
  std::chrono::steady_clock::time_point outage_start_;
  uint64_t dropped_at_start_ = 0;

  std::thread thread_;  // last: starts after everything it uses exists
};

}  // namespace twins
