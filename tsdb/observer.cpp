#include "tsdb/observer.hpp"

#include <chrono>
#include <functional>
#include <map>

#include "engine/names.hpp"

namespace twins {
namespace {

uint64_t Mix(uint64_t h, uint64_t value) { return h * 31 + value; }

}  // namespace

void TsdbObserver::OnWrite(const WriteEvent& event) noexcept {
  try {
    if (event.after == nullptr || event.document == kConfigDocument) return;  // deletions feed nothing
    if (event.config == nullptr) {
      if (log_) {
        log_(LogLevel::kError, "tsdb: cannot read the _config of twin " + std::string(event.twin) + ": " +
                                   (event.config_error != nullptr ? event.config_error->message() : "not given"));
      }
      return;
    }
    auto document = event.config->documents.find(std::string(event.document));
    if (document == event.config->documents.end() || !HasTrigger(document->second)) return;
    const std::string_view before = event.before != nullptr && HasOnChangeTrigger(document->second)
                                        ? event.before->data
                                        : std::string_view();

    // The series limit. One write's points are of distinct series (json_paths are unique in
    // a document), so once the twin feeds max_series_ and the write has met every series its
    // document fed, every further point would be of a new series: the gate closes.
    class SeriesGate final : public PointFilter {
     public:
      SeriesGate(TwinSeries& twin, size_t& fed_here, std::string_view document, size_t max)
          : twin_(twin), fed_here_(fed_here), document_(std::hash<std::string_view>()(document)), max_(max) {}
      bool Admit(uint64_t path_hash, const std::map<std::string, std::string>* tags) override {
        const uint64_t series = Mix(Mix(document_, path_hash), TagsHash(tags));
        if (twin_.fed.Contains(series)) {
          ++met_;
          return true;
        }
        if (twin_.fed.size() >= max_) {
          ++refused_;
          return false;
        }
        twin_.fed.Insert(series);
        ++fed_here_;
        ++met_;
        return true;
      }
      bool Closed() const override { return twin_.fed.size() >= max_ && met_ >= fed_here_; }
      uint64_t refused() const { return refused_; }

     private:
      uint64_t TagsHash(const std::map<std::string, std::string>* tags) {
        if (tags == tags_) return tags_hash_;
        std::hash<std::string_view> hash;
        uint64_t h = 0;
        if (tags != nullptr) {
          for (const auto& [name, value] : *tags) h = Mix(Mix(h, hash(name)), hash(value));
        }
        tags_ = tags;
        return tags_hash_ = h;
      }
      TwinSeries& twin_;
      size_t& fed_here_;  // series the twin fed from this document
      const uint64_t document_;
      const size_t max_;
      size_t met_ = 0;  // series of this document the write met, fed before or now
      uint64_t refused_ = 0;
      const std::map<std::string, std::string>* tags_ = nullptr;
      uint64_t tags_hash_ = 0;
    };

    TriggerPoints evaluated;
    uint64_t dropped = 0;
    bool first_drop = false;
    {
      std::lock_guard<std::mutex> lock(series_mutex_);
      TwinSeries* twin = series_.Find(event.twin);
      if (twin == nullptr) twin = &series_.Insert(event.twin, TwinSeries{}, 0);
      const size_t known = twin->fed.size();
      auto fed_here = twin->fed_by_document.find(event.document);
      if (fed_here == twin->fed_by_document.end()) fed_here = twin->fed_by_document.emplace(event.document, 0).first;
      SeriesGate gate(*twin, fed_here->second, event.document, max_series_);
      evaluated = EvaluateTriggers(document->second, before, event.request, &gate);
      dropped = gate.refused() + evaluated.left_out;
      too_long_.fetch_add(evaluated.too_long, std::memory_order_relaxed);
      if (dropped != 0 && !twin->logged) first_drop = twin->logged = true;
      // Last: charging may evict other twins, never this one.
      if (twin->fed.size() != known) {
        series_.Charge(event.twin,
                       twin->fed.size() * kBytesPerSeries + twin->fed_by_document.size() * kBytesPerDocument);
      }
    }
    std::vector<TsdbPoint>& points = evaluated.points;
    if (dropped != 0) {
      dropped_.fetch_add(dropped, std::memory_order_relaxed);
      if (first_drop && log_) {
        log_(LogLevel::kWarning, "tsdb: twin " + std::string(event.twin) + " feeds " + std::to_string(max_series_) +
                                     " series, the limit (plugin_opt_max_series_per_twin): points of other series "
                                     "are dropped");
      }
    }
    if (points.empty()) return;

    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    std::vector<Sample> samples;
    samples.reserve(points.size());
    for (TsdbPoint& point : points) {
      samples.push_back(Sample{std::string(event.twin), std::string(event.document), std::move(point), now,
                               event.change != nullptr ? event.change->seq : 0});
    }
    sink_.Push(std::move(samples));
  } catch (const std::exception& e) {  // out of memory: the write stands, its samples are lost
    if (log_) log_(LogLevel::kError, std::string("tsdb: samples lost: ") + e.what());
  } catch (...) {
    // Nothing may escape into the engine; logging itself may have thrown.
  }
}

}  // namespace twins
