#include "observer.hpp"

#include <chrono>

#include "names.hpp"

namespace twins {

void TsdbObserver::OnWrite(const WriteEvent& event) noexcept {
  try {
    if (event.document == kConfigDocument) return;
    auto config = engine_.Config(event.twin);
    if (!config.ok()) {
      if (log_) log_(LogLevel::kError, "tsdb: cannot read the _config of twin " + std::string(event.twin) + ": " +
                                           config.status().message());
      return;
    }
    auto document = config->documents.find(std::string(event.document));
    if (document == config->documents.end() || !HasTrigger(document->second)) return;

    Json before;
    if (event.before != nullptr && HasOnChangeTrigger(document->second)) {
      before.reset(cJSON_Parse(event.before->data.c_str()));
    }
    Json request(cJSON_ParseWithLength(event.request.data(), event.request.size()));
    Json after(cJSON_Parse(event.after->data.c_str()));
    std::vector<TsdbPoint> points = EvaluateTriggers(document->second, before.get(), request.get(), after.get());
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
