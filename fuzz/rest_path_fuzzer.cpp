// REST request paths (rest/path.hpp): splitting into segments and percent-decoding one.
// Checked against the definitions:
//  - the segments are the path (less one leading '/') cut at every '/', and hold none;
//  - decoding fails exactly when some '%' is not followed by two hex digits, otherwise it
//    replaces each "%XY" by one byte and keeps every other byte;
//  - any bytes percent-encoded (upper- or lower-case hex) decode back to themselves.
#include <string>

#include "rest/path.hpp"
#include "fuzz/support.hpp"

namespace twins::fuzz {
namespace {

bool IsHex(char c) { return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); }

// Every byte as %XY, the case of the hex digits chosen by the byte's position.
std::string EncodeAll(std::string_view text) {
  static const char kUpper[] = "0123456789ABCDEF";
  static const char kLower[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const char* hex = i % 2 ? kLower : kUpper;
    out += '%';
    out += hex[c >> 4];
    out += hex[c & 0xF];
  }
  return out;
}

}  // namespace

void FuzzOne(std::string_view path) {
  const std::vector<std::string_view> segments = SplitPath(path);
  std::string_view unrooted = path;
  if (!unrooted.empty() && unrooted[0] == '/') unrooted.remove_prefix(1);
  FUZZ_CHECK(!segments.empty());
  std::string joined;
  for (size_t i = 0; i < segments.size(); ++i) {
    FUZZ_CHECK(segments[i].find('/') == std::string_view::npos);
    if (i > 0) joined += '/';
    joined += segments[i];
  }
  FUZZ_CHECK_EQ(joined, std::string(unrooted));

  // The whole input as one segment: the definition, escape by escape.
  std::string expected;
  bool valid = true;
  for (size_t i = 0; i < path.size() && valid; ++i) {
    if (path[i] != '%') {
      expected += path[i];
    } else if (path.size() - i >= 3 && IsHex(path[i + 1]) && IsHex(path[i + 2])) {
      expected += static_cast<char>(std::stoi(std::string(path.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      valid = false;
    }
  }
  const std::optional<std::string> decoded = PercentDecode(path);
  FUZZ_CHECK(decoded.has_value() == valid);
  if (decoded) FUZZ_CHECK_EQ(*decoded, expected);
  for (std::string_view segment : segments) (void)PercentDecode(segment);

  const std::optional<std::string> round_trip = PercentDecode(EncodeAll(path));
  FUZZ_CHECK(round_trip.has_value());
  FUZZ_CHECK_EQ(*round_trip, std::string(path));
}

}  // namespace twins::fuzz
