#include "metrics/sys_topics.hpp"

namespace twins::metrics {
namespace {

constexpr std::string_view kPrefix = "twins_";
constexpr std::string_view kTotal = "_total";

}  // namespace

std::string SysTopic(const Sample& sample) {
  std::string_view name = sample.name;
  if (name.substr(0, kPrefix.size()) == kPrefix) name.remove_prefix(kPrefix.size());
  if (name.size() > kTotal.size() && name.substr(name.size() - kTotal.size()) == kTotal) {
    name.remove_suffix(kTotal.size());
  }
  std::string topic = "$SYS/broker/twins/";
  topic += name;
  for (const auto& label : sample.labels) {
    topic += '/';
    topic += label.second;
  }
  if (*sample.part != '\0') {
    topic += '/';
    topic += sample.part;
  }
  return topic;
}

std::vector<std::pair<std::string, std::string>> SysTopics::Changed(const Registry& registry) {
  std::vector<std::pair<std::string, std::string>> changed;
  registry.ForEach([&](const Sample& sample) {
    std::string topic = SysTopic(sample);
    std::string payload = FormatValue(sample.value);
    auto [it, inserted] = last_.try_emplace(topic, payload);
    if (!inserted) {
      if (it->second == payload) return;
      it->second = payload;
    }
    changed.emplace_back(std::move(topic), std::move(payload));
  });
  return changed;
}

}  // namespace twins::metrics
