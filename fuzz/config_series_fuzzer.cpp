// From a twin's `_config` and a write to the Graphite series it pushes: store/twin_config,
// tsdb/observer, tsdb/points and tsdb/series, run as the plugin runs them, on an engine over
// memory. An input is five lines:
//   put|patch          the write (anything but "patch" is a put)
//   <twin id>
//   <_config data>     its first configured document is the one written
//   <data before>      empty: the write creates the document
//   <data written>
// Checked, for every point pushed:
//  - its json_path leads, key by key (each unescaped), to a number or boolean of the document
//    after the write that holds the point's value;
//  - series names hold only [A-Za-z0-9_.%-], and tag names and values only printable ASCII
//    without ';' nor a leading '~' (tag names without '!', '^', '='); nothing is empty;
//  - escaping is reversible: the name's parts, the tags and every user tag decode (rest/path's
//    percent-decoding) to what they name;
//  - the carbon line is one line of three fields, and the Grafana JSON parses.
// Every line also goes through the three escapes on its own, which must decode back to it.
#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "engine/json.hpp"
#include "engine/names.hpp"
#include "tsdb/observer.hpp"
#include "rest/path.hpp"
#include "tsdb/series.hpp"
#include "fuzz/support.hpp"

namespace twins::fuzz {
namespace {

class RecordingSink final : public SampleSink {
 public:
  void Push(std::vector<Sample> samples) noexcept override {
    for (Sample& sample : samples) this->samples.push_back(std::move(sample));
  }
  std::vector<Sample> samples;
};

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '%';
}

std::string Decoded(std::string_view escaped) {
  std::optional<std::string> decoded = PercentDecode(escaped);
  FUZZ_CHECK(decoded.has_value());
  return *decoded;
}

std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

// Escaped name segments: [A-Za-z0-9_-] and %XY only, never empty.
void CheckNameSegments(std::string_view joined) {
  for (std::string_view segment : Split(joined, '.')) {
    FUZZ_CHECK(!segment.empty());
    for (char c : segment) FUZZ_CHECK(IsNameByte(c));
  }
}

void CheckTagText(std::string_view text, bool is_name) {
  FUZZ_CHECK(!text.empty() && text[0] != '~');
  for (char c : text) {
    FUZZ_CHECK(c > 0x20 && c < 0x7F && c != ';');
    if (is_name) FUZZ_CHECK(c != '!' && c != '^' && c != '=');
  }
}

void CheckEscapes(std::string_view text) {
  const std::string segment = EscapeNameSegment(text);
  CheckNameSegments(segment);
  FUZZ_CHECK(segment.find('.') == std::string::npos);
  FUZZ_CHECK_EQ(text.empty() ? std::string() : Decoded(segment), std::string(text));
  if (text.empty()) return;
  const std::string name = EscapeTagName(text), value = EscapeTagValue(text);
  CheckTagText(name, true);
  CheckTagText(value, false);
  FUZZ_CHECK_EQ(Decoded(name), std::string(text));
  FUZZ_CHECK_EQ(Decoded(value), std::string(text));
}

// The leaf the point's json_path names in `after`.
void CheckLeaf(const cJSON* after, const TsdbPoint& point) {
  CheckNameSegments(point.json_path);
  const cJSON* node = after;
  for (std::string_view segment : Split(point.json_path, '.')) {
    if (cJSON_IsArray(node)) {
      FUZZ_CHECK(segment.find_first_not_of("0123456789") == std::string_view::npos);
      FUZZ_CHECK(segment.size() == 1 || segment[0] != '0');
      node = cJSON_GetArrayItem(node, std::stoi(std::string(segment)));
    } else {
      FUZZ_CHECK(cJSON_IsObject(node));
      const std::string key = segment == "_" ? std::string() : Decoded(segment);  // "_" is the empty key
      node = cJSON_GetObjectItemCaseSensitive(node, key.c_str());
    }
    FUZZ_CHECK(node != nullptr);
  }
  FUZZ_CHECK(cJSON_IsNumber(node) || cJSON_IsBool(node));
  const double value = cJSON_IsNumber(node) ? node->valuedouble : cJSON_IsTrue(node) ? 1 : 0;
  FUZZ_CHECK(value == point.value);
}

void CheckSeries(const Sample& sample) {
  auto encoded = Encode(sample);
  if (!encoded.ok()) {
    FUZZ_CHECK(encoded.status().code() == Code::kInvalidArgument);
    return;
  }
  const Series& series = encoded->series;
  FUZZ_CHECK_EQ(series.name, "twins." + EscapeNameSegment(sample.twin) + "." + EscapeNameSegment(sample.document) +
                                 "." + sample.point.json_path);
  CheckNameSegments(series.name);
  const std::vector<std::string_view> parts = Split(series.name, '.');
  FUZZ_CHECK(parts.size() >= 4);
  FUZZ_CHECK_EQ(Decoded(parts[1]), sample.twin);
  FUZZ_CHECK_EQ(Decoded(parts[2]), sample.document);

  std::map<std::string, std::string> decoded_tags;
  for (size_t i = 0; i < series.tags.size(); ++i) {
    const auto& [name, value] = series.tags[i];
    if (i > 0) FUZZ_CHECK(series.tags[i - 1].first < name);
    CheckTagText(name, true);
    CheckTagText(value, false);
    decoded_tags[Decoded(name)] = Decoded(value);
  }
  FUZZ_CHECK_EQ(decoded_tags["twin_id"], sample.twin);
  FUZZ_CHECK_EQ(decoded_tags["document"], sample.document);
  // json_path is a tag as it is in the name: already escaped, segment by segment.
  const auto json_path = std::find_if(series.tags.begin(), series.tags.end(),
                                      [](const auto& tag) { return tag.first == "json_path"; });
  FUZZ_CHECK(json_path != series.tags.end());
  FUZZ_CHECK_EQ(json_path->second, sample.point.json_path);
  size_t user_tags = 0;
  for (const auto& [name, value] : sample.point.tags) {
    if (name == "name" || value.empty() || name == "twin_id" || name == "document" || name == "json_path") continue;
    ++user_tags;
    FUZZ_CHECK(decoded_tags.count(name) == 1);
    FUZZ_CHECK_EQ(decoded_tags[name], value);
  }
  FUZZ_CHECK(series.tags.size() == user_tags + 3);

  const std::string line = PlaintextLine(*encoded);
  FUZZ_CHECK(line.find('\n') == line.size() - 1);
  FUZZ_CHECK(std::count(line.begin(), line.end(), ' ') == 2);
  FUZZ_CHECK(line.compare(0, series.name.size(), series.name) == 0);
  const std::string json = GraphiteJson({*encoded}, 10);
  Json parsed(cJSON_ParseWithLength(json.data(), json.size()));
  FUZZ_CHECK(cJSON_GetArraySize(parsed.get()) == 1);
  const cJSON* name = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(parsed.get(), 0), "name");
  FUZZ_CHECK(cJSON_IsString(name) && series.name == name->valuestring);
}

}  // namespace

void FuzzOne(std::string_view input) {
  auto lines = Lines(input, 5);
  if (!lines) return;
  for (std::string_view line : *lines) CheckEscapes(line);
  const bool patch = (*lines)[0] == "patch";
  const std::string twin((*lines)[1]);
  const std::string_view config_data = (*lines)[2], before_data = (*lines)[3], written_data = (*lines)[4];

  Engine engine(std::make_unique<MemoryStore>(), Limits());
  RecordingSink sink;
  TsdbObserver observer(sink);
  engine.AddObserver(&observer);

  auto config_request = ParseWriteRequest(Body(config_data), Limits());
  if (!config_request.ok() || !engine.Put(twin, kConfigDocument, config_request.value()).ok()) return;
  auto config = engine.Config(twin);
  FUZZ_CHECK(config.ok());
  if (config->documents.empty()) return;
  const std::string document = config->documents.begin()->first;

  if (!before_data.empty()) {
    auto before = ParseWriteRequest(Body(before_data), Limits());
    if (!before.ok() || !engine.Put(twin, document, before.value()).ok()) return;
  }
  sink.samples.clear();
  auto written = ParseWriteRequest(Body(written_data), Limits());
  if (!written.ok()) return;
  auto result = patch ? engine.Patch(twin, document, written.value()) : engine.Put(twin, document, written.value());
  if (!result.ok()) {
    FUZZ_CHECK(sink.samples.empty());
    return;
  }
  Json after(cJSON_ParseWithLength(result->data.data(), result->data.size()));
  FUZZ_CHECK(after != nullptr);
  for (const Sample& sample : sink.samples) {
    FUZZ_CHECK(sample.twin == twin && sample.document == document);
    CheckLeaf(after.get(), sample.point);
    CheckSeries(sample);
  }
}

}  // namespace twins::fuzz
