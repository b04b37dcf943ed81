#include "observer.hpp"

#include <chrono>
#include <functional>

#include "names.hpp"

namespace twins {
namespace {

uint64_t SeriesHash(std::string_view document, std::string_view json_path, const std::map<std::string, std::string>* tags) {
  std::hash<std::string_view> hash;
  uint64_t h = hash(document) * 31 + hash(json_path);
  if (tags != nullptr) {
    for (const auto& [name, value] : *tags) h = (h * 31 + hash(name)) * 31 + hash(value);
  }
  return h;
}

}  // namespace

void TsdbObserver::OnWrite(const WriteEvent& event) noexcept {
  try {
    if (event.document == kConfigDocument) return;
    if (event.config == nullptr) {
      if (log_) {
        log_(LogLevel::kError, "tsdb: cannot read the _config of twin " + std::string(event.twin) + ": " +
                                   (event.config_error != nullptr ? event.config_error->message() : "not given"));
      }
      return;
    }
    auto document = event.config->documents.find(std::string(event.document));
    if (document == event.config->documents.end() || !HasTrigger(document->second)) return;

    Json before;
    if (event.before != nullptr && HasOnChangeTrigger(document->second)) {
      before.reset(cJSON_Parse(event.before->data.c_str()));
    }
    // A put's request is its document: one tree for both.
    Json request(cJSON_ParseWithLength(event.request.data(), event.request.size()));
    Json after(event.request == event.after->data ? nullptr : cJSON_Parse(event.after->data.c_str()));

    // One write's points are of distinct series, so it yields at most max_series_ of them.
    std::vector<TsdbPoint> points;
    uint64_t dropped = 0;
    bool first_drop = false;
    {
      std::lock_guard<std::mutex> lock(series_mutex_);
      TwinSeries* twin = series_.Find(event.twin);
      if (twin == nullptr) twin = &series_.Insert(event.twin, TwinSeries{}, 0);
      const size_t known = twin->fed.size();
      auto admit = [&](std::string_view json_path, const std::map<std::string, std::string>* tags) {
        const uint64_t series = SeriesHash(event.document, json_path, tags);
        if (twin->fed.count(series) != 0) return true;
        if (twin->fed.size() < max_series_) return twin->fed.insert(series).second;
        ++dropped;
        return false;
      };
      points = EvaluateTriggers(document->second, before.get(), request.get(), after ? after.get() : request.get(), admit);
      if (dropped != 0 && !twin->logged) first_drop = twin->logged = true;
      // Last: charging may evict other twins, never this one.
      if (twin->fed.size() != known) series_.Charge(event.twin, twin->fed.size() * kBytesPerSeries);
    }
    if (dropped != 0) {
      dropped_.fetch_add(dropped, std::memory_order_relaxed);
      if (first_drop && log_) {
        log_(LogLevel::kWarning, "tsdb: twin " + std::string(event.twin) + " feeds " + std::to_string(max_series_) +
                                     " series, the limit (plugin_opt_max_series_per_twin): points of other series "
                                     "are dropped");
      }
    }
    if (points.empty()) return;

    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::vector<Sample> samples;
    samples.reserve(points.size());
    for (TsdbPoint& point : points) {
      samples.push_back(Sample{std::string(event.twin), std::string(event.document), std::move(point), now});
    }
    sink_.Push(std::move(samples));
  } catch (const std::exception& e) {  // out of memory: the write stands, its samples are lost
    if (log_) log_(LogLevel::kError, std::string("tsdb: samples lost: ") + e.what());
  } catch (...) {
    // Nothing may escape into the engine; logging itself may have thrown.
  }
}

}  // namespace twins
