// How a sample is named in Graphite, and its two wire forms.
//
// Name:  twins.<twin id>.<document>.<json_path>, each part escaped by EscapeNameSegment.
// Tags:  the user's `_tags`, then twin_id, document and json_path (which win over user tags
//        of the same name); a user tag called "name" is dropped (Graphite derives it from the
//        name); a tag whose value is empty is dropped (Graphite refuses empty values).
//
// Escaping is percent-encoding of single bytes (%XX, upper-case hex), so it is reversible
// and leaves common keys untouched:
//  - name segments (and json_path segments) keep only [A-Za-z0-9_-]: '.' separates segments
//    and the rest ('*', '{', '[', '~', ...) means something in Graphite queries or file names.
//    An empty key becomes "_", which no real key can be (data keys cannot start with '_').
//  - tag values keep printable ASCII except ';' (the tag separator) and '%'; a leading '~' is
//    escaped (carbon refuses it). Tag names additionally escape '!', '^' and '='.
//  - everything else (spaces, control characters, bytes of non-ASCII UTF-8) is escaped: the
//    line protocol splits on whitespace and Graphite recommends ASCII only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tsdb/sample.hpp"
#include "common/status.hpp"

namespace twins {

// Carbon closes a connection on a line longer than 16 KiB; longer series are refused.
inline constexpr size_t kMaxSeriesBytes = 8192;

std::string EscapeNameSegment(std::string_view segment);
// EscapeNameSegment, appended to `out`.
void AppendNameSegment(std::string_view segment, std::string* out);
std::string EscapeTagName(std::string_view name);
std::string EscapeTagValue(std::string_view value);

struct Series {
  std::string name;
  std::vector<std::pair<std::string, std::string>> tags;  // escaped, sorted by name
};

// A sample ready for the wire.
struct EncodedPoint {
  Series series;
  double value = 0;
  int64_t time = 0;
};

// InvalidArgument when the name plus tags would be longer than kMaxSeriesBytes.
Result<EncodedPoint> Encode(const Sample& sample);

// Shortest text that reads back as the same double ("21.5", "1200", "1e+300").
std::string FormatValue(double value);

// Carbon plaintext: "name;tag=value;... value time\n".
std::string PlaintextLine(const EncodedPoint& point);

// The JSON array Grafana Cloud's Graphite endpoint takes:
// [{"name":…,"interval":…,"value":…,"time":…,"tags":["k=v",…]},…]
std::string GraphiteJson(const std::vector<EncodedPoint>& points, int interval_seconds);

}  // namespace twins
