#include "metrics/registry.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace twins::metrics {
namespace {

const char* TypeName(Type type) {
  switch (type) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

void AppendEscaped(std::string& out, const std::string& text, bool quote) {
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// {a="x",b="y"} with `extra` (le="...") last; nothing for no labels.
void AppendLabels(std::string& out, const Labels& labels, const char* extra_name = nullptr,
                  const std::string& extra_value = {}) {
  if (labels.empty() && extra_name == nullptr) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    AppendEscaped(out, value, true);
    out += '"';
  }
  if (extra_name != nullptr) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void AppendLine(std::string& out, const std::string& name, const char* suffix, const Labels& labels, double value,
                const char* extra_name = nullptr, const std::string& extra_value = {}) {
  out += name;
  out += suffix;
  AppendLabels(out, labels, extra_name, extra_value);
  out += ' ';
  out += FormatValue(value);
  out += '\n';
}

}  // namespace

std::string FormatValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char text[32];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(text, sizeof text, "%.*g", precision, value);
    if (std::strtod(text, nullptr) == value) break;
  }
  return text;
}

void Histogram::ObserveNanos(uint64_t nanos) {
  const double seconds = static_cast<double>(nanos) / 1e9;
  const size_t bucket = std::lower_bound(kBoundsSeconds.begin(), kBoundsSeconds.end(), seconds) -
                        kBoundsSeconds.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(nanos, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum_seconds = static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

Registry::Series& Registry::Add(const std::string& name, const std::string& help, Type type, Labels labels) {
  auto family = std::find_if(families_.begin(), families_.end(), [&](const Family& f) { return f.name == name; });
  if (family == families_.end()) {
    families_.push_back({name, help, type, {}});
    family = std::prev(families_.end());
  } else if (family->type != type) {
    throw std::logic_error("metric " + name + " declared with two types");
  }
  family->series.push_back(Series{std::move(labels), nullptr, nullptr, nullptr, nullptr});
  return family->series.back();
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help, Labels labels) {
  Series& s = Add(name, help, Type::kCounter, std::move(labels));
  s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help, Labels labels) {
  Series& s = Add(name, help, Type::kGauge, std::move(labels));
  s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help, Labels labels) {
  Series& s = Add(name, help, Type::kHistogram, std::move(labels));
  s.histogram = std::make_unique<Histogram>();
  return *s.histogram;
}

void Registry::AddCallback(const std::string& name, const std::string& help, Type type, Labels labels,
                           std::function<double()> read) {
  if (type == Type::kHistogram) throw std::logic_error("metric " + name + ": a callback cannot be a histogram");
  Add(name, help, type, std::move(labels)).read = std::move(read);
}

std::string Registry::RenderPrometheus() const {
  std::string out;
  out.reserve(32 << 10);
  for (const Family& family : families_) {
    out += "# HELP ";
    out += family.name;
    out += ' ';
    AppendEscaped(out, family.help, false);
    out += "\n# TYPE ";
    out += family.name;
    out += ' ';
    out += TypeName(family.type);
    out += '\n';
    for (const Series& series : family.series) {
      if (series.histogram) {
        const Histogram::Snapshot h = series.histogram->snapshot();
        uint64_t cumulative = 0;
        for (size_t i = 0; i < h.buckets.size(); ++i) {
          cumulative += h.buckets[i];
          const std::string le = i < Histogram::kBoundsSeconds.size() ? FormatValue(Histogram::kBoundsSeconds[i])
                                                                      : "+Inf";
          AppendLine(out, family.name, "_bucket", series.labels, static_cast<double>(cumulative), "le", le);
        }
        AppendLine(out, family.name, "_sum", series.labels, h.sum_seconds);
        AppendLine(out, family.name, "_count", series.labels, static_cast<double>(h.count));
        continue;
      }
      AppendLine(out, family.name, "", series.labels,
                 series.read      ? series.read()
                 : series.counter ? static_cast<double>(series.counter->value())
                                  : static_cast<double>(series.gauge->value()));
    }
  }
  return out;
}

void Registry::ForEach(const std::function<void(const Sample&)>& visit) const {
  for (const Family& family : families_) {
    for (const Series& series : family.series) {
      if (series.histogram) {
        const Histogram::Snapshot h = series.histogram->snapshot();
        visit({family.name, "count", series.labels, static_cast<double>(h.count)});
        visit({family.name, "sum", series.labels, h.sum_seconds});
        continue;
      }
      const double value = series.read      ? series.read()
                           : series.counter ? static_cast<double>(series.counter->value())
                                            : static_cast<double>(series.gauge->value());
      visit({family.name, "", series.labels, value});
    }
  }
}

}  // namespace twins::metrics
