// What gathering the metrics adds to one MQTT request on the broker thread: the clock reads
// around it and the counter and histogram updates (plugin.cpp OnMessage and CommitPass), to
// set against the broker's cost per request (tens of microseconds, docs/performance.md).
#include <benchmark/benchmark.h>

#include <chrono>

#include "metrics/twins_metrics.hpp"

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t Nanos(Clock::time_point from, Clock::time_point to) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

// One request as the plugin counts it: three clock reads, a broker-thread histogram, then the
// request counter and duration histogram when its reply leaves.
void BM_MetricsPerMqttRequest(benchmark::State& state) {
  metrics::TwinsMetrics metrics("bench");
  for (auto _ : state) {
    const Clock::time_point arrived = Clock::now();
    const Clock::time_point handled = Clock::now();
    metrics.BrokerThread(metrics::Operation::kPatch, Nanos(arrived, handled));
    metrics.Request(metrics::Api::kMqtt, metrics::Operation::kPatch, metrics::Outcome::kOk,
                    Nanos(arrived, Clock::now()));
  }
}
BENCHMARK(BM_MetricsPerMqttRequest);

// The same from two threads at once (REST workers beside the broker thread): shared atomics.
BENCHMARK(BM_MetricsPerMqttRequest)->Threads(2);

}  // namespace
}  // namespace twins

BENCHMARK_MAIN();
