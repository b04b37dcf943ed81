#include "plugin/plugin_metrics.hpp"

#include <algorithm>

namespace twins {

using metrics::Type;

ContentCounter::ContentCounter(const Engine& engine, std::chrono::milliseconds interval) : engine_(engine) {
  thread_ = std::thread([this, interval] { Run(interval); });
}

ContentCounter::~ContentCounter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ContentCounter::Run(std::chrono::milliseconds interval) {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    const auto start = std::chrono::steady_clock::now();
    auto counts = engine_.CountContents();
    const auto took = std::chrono::steady_clock::now() - start;
    twins_.store(counts.ok() ? static_cast<int64_t>(counts->twins) : -1, std::memory_order_relaxed);
    documents_.store(counts.ok() ? static_cast<int64_t>(counts->documents) : -1, std::memory_order_relaxed);
    lock.lock();
    const auto wait = std::max<std::chrono::steady_clock::duration>(interval, took * 100);
    wake_.wait_for(lock, wait, [this] { return stopping_; });
  }
}

void DeclareSourceMetrics(metrics::TwinsMetrics& metrics, const Engine& engine, const ContentCounter& contents,
                          const GraphiteSender* graphite) {
  metrics::Registry& r = metrics.registry();
  r.AddCallback("twins_twins",
                "Twins with at least one document (counted in the background; -1 before the first count)", Type::kGauge,
                {}, [&contents] { return static_cast<double>(contents.twins()); });
  r.AddCallback("twins_documents", "Documents of all twins, _config included (counted in the background)", Type::kGauge,
                {}, [&contents] { return static_cast<double>(contents.documents()); });
  r.AddCallback("twins_store_bytes", "Size of the database's files on disk", Type::kGauge, {},
                [&engine] { return static_cast<double>(engine.store_stats().disk_bytes); });
  r.AddCallback("twins_cache_hits_total", "Document reads answered by the document cache", Type::kCounter, {},
                [&engine] { return static_cast<double>(engine.store_stats().cache_hits); });
  r.AddCallback("twins_cache_misses_total", "Document reads that went to the database", Type::kCounter, {},
                [&engine] { return static_cast<double>(engine.store_stats().cache_misses); });
  r.AddCallback("twins_store_write_failures_total", "Writes, log writes and flushes the database refused",
                Type::kCounter, {}, [&engine] { return static_cast<double>(engine.store_stats().write_failures); });
  r.AddCallback("twins_writes_refused", "1 while writes are refused for the reason given", Type::kGauge,
                {{"reason", "disk_reserve"}}, [&engine] { return engine.store_stats().below_reserve ? 1.0 : 0.0; });
  r.AddCallback("twins_writes_refused", "1 while writes are refused for the reason given", Type::kGauge,
                {{"reason", "store_failed"}}, [&engine] { return engine.store_stats().stopped ? 1.0 : 0.0; });
  if (graphite == nullptr) return;
  r.AddCallback("twins_graphite_points_sent_total", "Points delivered to Graphite", Type::kCounter, {},
                [graphite] { return static_cast<double>(graphite->counters().sent); });
  r.AddCallback("twins_graphite_points_dropped_total",
                "Points lost: the queue was full (the oldest go) or still held at stop", Type::kCounter, {},
                [graphite] { return static_cast<double>(graphite->counters().dropped); });
  r.AddCallback("twins_graphite_points_rejected_total",
                "Points that cannot be sent: too long to encode, or refused by Graphite", Type::kCounter, {},
                [graphite] { return static_cast<double>(graphite->counters().rejected); });
  r.AddCallback("twins_graphite_send_errors_total", "Failed delivery attempts (each retried)", Type::kCounter, {},
                [graphite] { return static_cast<double>(graphite->counters().errors); });
  r.AddCallback("twins_graphite_queue_points", "Points waiting to be sent", Type::kGauge, {},
                [graphite] { return static_cast<double>(graphite->counters().queued); });
  r.AddCallback("twins_graphite_up", "1 when the last delivery to Graphite succeeded, 0 during an outage", Type::kGauge,
                {}, [graphite] { return graphite->counters().up ? 1.0 : 0.0; });
}

}  // namespace twins
