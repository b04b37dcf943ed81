#include "tsdb/series.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "engine/json.hpp"

namespace twins {
namespace {

void AppendEscaped(std::string* out, unsigned char c) {
  static const char kHex[] = "0123456789ABCDEF";
  *out += '%';
  *out += kHex[c >> 4];
  *out += kHex[c & 0xF];
}

bool IsAlnum(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

bool IsPrintableAscii(unsigned char c) { return c > 0x20 && c < 0x7F; }

// Appends `text` to `out`, the bytes `keep` refuses escaped; a leading '~' never stays.
template <class Keep>
void AppendEscapedText(std::string_view text, Keep keep, std::string* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (keep(c) && !(i == 0 && c == '~')) {
      *out += static_cast<char>(c);
    } else {
      AppendEscaped(out, c);
    }
  }
}

template <class Keep>
std::string Escape(std::string_view text, Keep keep) {
  std::string out;
  out.reserve(text.size());
  AppendEscapedText(text, keep, &out);
  return out;
}

bool KeptInName(unsigned char c) { return IsAlnum(c) || c == '_' || c == '-'; }

}  // namespace

void AppendNameSegment(std::string_view segment, std::string* out) {
  if (segment.empty()) {
    *out += '_';
  } else if (std::all_of(segment.begin(), segment.end(), [](char c) { return KeptInName(c); })) {
    out->append(segment);  // most keys: one copy
  } else {
    AppendEscapedText(segment, KeptInName, out);
  }
}

std::string EscapeNameSegment(std::string_view segment) {
  std::string out;
  AppendNameSegment(segment, &out);
  return out;
}

std::string EscapeTagValue(std::string_view value) {
  return Escape(value, [](unsigned char c) { return IsPrintableAscii(c) && c != ';' && c != '%'; });
}

std::string EscapeTagName(std::string_view name) {
  return Escape(name, [](unsigned char c) {
    return IsPrintableAscii(c) && c != ';' && c != '%' && c != '!' && c != '^' && c != '=';
  });
}

Result<EncodedPoint> Encode(const Sample& sample) {
  EncodedPoint encoded;
  encoded.value = sample.point.value;
  encoded.time = sample.time;
  encoded.series.name = "twins." + EscapeNameSegment(sample.twin) + "." + EscapeNameSegment(sample.document) + "." +
                        sample.point.json_path;

  std::map<std::string, std::string> tags;
  for (const auto& [name, value] : sample.point.tags) {
    if (name == "name" || value.empty()) continue;
    tags[EscapeTagName(name)] = EscapeTagValue(value);
  }
  tags["twin_id"] = EscapeTagValue(sample.twin);
  tags["document"] = EscapeTagValue(sample.document);
  tags["json_path"] = sample.point.json_path;

  size_t bytes = encoded.series.name.size();
  for (auto& tag : tags) {
    bytes += tag.first.size() + tag.second.size() + 2;
    encoded.series.tags.emplace_back(tag.first, std::move(tag.second));
  }
  if (bytes > kMaxSeriesBytes) {
    return Status::InvalidArgument("json_path", "series " + encoded.series.name.substr(0, 200) + "... is " +
                                                    std::to_string(bytes) + " bytes long, more than " +
                                                    std::to_string(kMaxSeriesBytes));
  }
  return encoded;
}

std::string FormatValue(double value) {
  char buffer[32];
  auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

std::string PlaintextLine(const EncodedPoint& point) {
  std::string line = point.series.name;
  for (const auto& [name, value] : point.series.tags) {
    line += ';';
    line += name;
    line += '=';
    line += value;
  }
  line += ' ';
  line += FormatValue(point.value);
  line += ' ';
  line += std::to_string(point.time);
  line += '\n';
  return line;
}

std::string GraphiteJson(const std::vector<EncodedPoint>& points, int interval_seconds) {
  std::string out = "[";
  for (const EncodedPoint& point : points) {
    if (out.size() > 1) out += ',';
    out += "{\"name\":" + QuoteJson(point.series.name);
    out += ",\"interval\":" + std::to_string(interval_seconds);
    out += ",\"value\":" + FormatValue(point.value);
    out += ",\"time\":" + std::to_string(point.time);
    out += ",\"tags\":[";
    for (size_t i = 0; i < point.series.tags.size(); ++i) {
      if (i > 0) out += ',';
      out += QuoteJson(point.series.tags[i].first + "=" + point.series.tags[i].second);
    }
    out += "]}";
  }
  out += ']';
  return out;
}

}  // namespace twins
