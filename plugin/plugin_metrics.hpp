// The figures the plugin reads from elsewhere for its metrics (metrics/twins_metrics.hpp):
// the store's size and cache, refused writes, the Graphite sender; and the counts of twins
// and documents, which take a scan of the database and are therefore kept by a thread of
// their own (ContentCounter), never by the request path or the broker thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

#include "engine/engine.hpp"
#include "tsdb/graphite.hpp"
#include "metrics/twins_metrics.hpp"

namespace twins {

// Counts twins and documents at start, then again every `interval` or 100 times as long as
// the last count took, whichever is longer (the scan costs at most ~1% of a core).
class ContentCounter {
 public:
  ContentCounter(const Engine& engine, std::chrono::milliseconds interval);
  // Stops the thread (waits for a count in progress).
  ~ContentCounter();
  ContentCounter(const ContentCounter&) = delete;
  ContentCounter& operator=(const ContentCounter&) = delete;

  // -1 until the first count has finished (or when counting failed).
  int64_t twins() const { return twins_.load(std::memory_order_relaxed); }
  int64_t documents() const { return documents_.load(std::memory_order_relaxed); }

 private:
  void Run(std::chrono::milliseconds interval);

  const Engine& engine_;
  std::atomic<int64_t> twins_{-1};
  std::atomic<int64_t> documents_{-1};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: starts once the rest exists
};

// Declares the store's figures (and the Graphite sender's, when there is one) on `metrics`.
// Everything passed must outlive every rendering of the registry.
void DeclareSourceMetrics(metrics::TwinsMetrics& metrics, const Engine& engine, const ContentCounter& contents,
                          const GraphiteSender* graphite);

}  // namespace twins
