// Counters, gauges and histograms that any thread may update at the cost of a relaxed atomic
// add, and their rendering in the Prometheus text exposition format (version 0.0.4).
//
// Every series is declared up front, with its label values, when the registry is built (at
// plugin start, on one thread): the hot path holds a pointer to its series and never looks a
// name or a label up, and the set of series is bounded by construction. Values that live
// elsewhere (the store's size, a queue's length) are read when the registry is rendered,
// through a callback.
//
// Thread-safety: declare series before the registry is shared; after that Add/Set/Observe,
// Render and ForEach may run on any thread at once. Callbacks run on the rendering thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace twins::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Durations in nanoseconds, exposed in seconds. Buckets are fixed (kBoundsSeconds), from
// 50 us to 10 s: a broker-thread request takes microseconds, a reply waits a loop pass.
class Histogram {
 public:
  static constexpr std::array<double, 16> kBoundsSeconds = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
  void ObserveNanos(uint64_t nanos);

  struct Snapshot {
    std::array<uint64_t, kBoundsSeconds.size() + 1> buckets{};  // not cumulative; last is +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot snapshot() const;

 private:
  std::array<std::atomic<uint64_t>, kBoundsSeconds.size() + 1> buckets_{};
  std::atomic<uint64_t> sum_nanos_{0};
};

enum class Type { kCounter, kGauge, kHistogram };

// One value as the $SYS publisher sees it: the family name, the series' labels in declared
// order, and a number. A histogram gives two, with part "count" and "sum".
struct Sample {
  const std::string& name;
  const char* part;  // "" but for histograms
  const Labels& labels;
  double value;
};

class Registry {
 public:
  // A family is created by its first series; later series of the same name must have the
  // same type (else std::logic_error: a programming error, found at start).
  Counter& AddCounter(const std::string& name, const std::string& help, Labels labels = {});
  Gauge& AddGauge(const std::string& name, const std::string& help, Labels labels = {});
  Histogram& AddHistogram(const std::string& name, const std::string& help, Labels labels = {});
  // A value read at render time (counter or gauge); `read` must be thread-safe.
  void AddCallback(const std::string& name, const std::string& help, Type type, Labels labels,
                   std::function<double()> read);

  // The whole registry in the text format, families in declaration order.
  std::string RenderPrometheus() const;
  // Every counter and gauge value, and each histogram's count and sum.
  void ForEach(const std::function<void(const Sample&)>& visit) const;

 private:
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> read;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::deque<Series> series;
  };
  Series& Add(const std::string& name, const std::string& help, Type type, Labels labels);

  std::deque<Family> families_;
};

// A number as the text format writes it: integers without a fraction, others in shortest
// round-trip form, NaN and infinities by name.
std::string FormatValue(double value);

}  // namespace twins::metrics
