// Turns successful twin writes into time-series samples, per the twin's `_config`.
//
// Installed with Engine::AddObserver. For each put or patch of a document (never of
// `_config` itself) it takes the twin's configuration from the write event (the engine
// parses `_config` when it is written and keeps it, so a `_config` change applies from the
// next write on and costs nothing per write), evaluates the triggers (points.hpp) and hands
// the samples, stamped with the time of the write, to the sink. It never waits on the
// network: the sink queues. Triggers are evaluated on the stored text of the request (and,
// for on-change, of the document before the write), without parsing it into trees; a document
// without `_tsdb_trigger` costs a lookup.
//
// Series per twin: a series is what Graphite stores apart, a twin's document, json_path and
// tags. A twin feeds at most `max_series_per_twin` distinct series: a point of a series the
// twin has not fed yet, once it feeds that many, is dropped and counted (dropped()), and
// the first drop of a twin is logged. The series a twin fed are remembered for the twins that
// pushed most recently (about 16 MiB of them, 16 bytes a series); a twin forgotten, and every
// twin after a restart, starts counting again. Once a write has met every series its document
// fed and the twin feeds max_series_per_twin, no further leaf of the write can be pushed: its
// points are counted as dropped without being named (EvaluateTriggers' closed filter), so a
// write costs little more than the points it keeps, whatever the size of the array a
// trigger covers.
//
// Thread-safety: OnWrite may run on several threads at once (REST workers, the broker).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>

#include "engine/engine.hpp"
#include "common/log.hpp"
#include "common/lru_map.hpp"
#include "tsdb/sample.hpp"
#include "tsdb/series_set.hpp"

namespace twins {

class TsdbObserver final : public WriteObserver {
 public:
  static constexpr size_t kDefaultMaxSeriesPerTwin = 1000;

  // `sink` must outlive the observer. `log` may be empty.
  explicit TsdbObserver(SampleSink& sink, size_t max_series_per_twin = kDefaultMaxSeriesPerTwin, LogFn log = nullptr)
      : sink_(sink), max_series_(max_series_per_twin), log_(std::move(log)) {}

  void OnWrite(const WriteEvent& event) noexcept override;

  // Points dropped because their twin feeds max_series_per_twin series already.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Points never made: their json_path is longer than a Graphite series name may be.
  uint64_t too_long() const { return too_long_.load(std::memory_order_relaxed); }

 private:
  struct TwinSeries {
    SeriesSet fed;                                               // hashes of document, json_path and tags
    std::map<std::string, size_t, std::less<>> fed_by_document;  // how many of them each document fed
    bool logged = false;
  };
  static constexpr size_t kSeriesMemory = 16 << 20;
  static constexpr size_t kBytesPerSeries = 16;
  static constexpr size_t kBytesPerDocument = 64;

  SampleSink& sink_;
  const size_t max_series_;
  LogFn log_;
  std::mutex series_mutex_;
  LruMap<TwinSeries> series_{kSeriesMemory};  // by twin id
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> too_long_{0};
};

}  // namespace twins
