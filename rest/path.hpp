// Request paths: split into segments before decoding, so an encoded '/' (%2F) stays inside
// its segment (and is then refused by the name rules instead of changing the route).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twins {

// "/a/b%20c" -> {"a", "b%20c"}; "/" -> {""}; segments stay encoded.
std::vector<std::string_view> SplitPath(std::string_view path);

// RFC 3986 percent-decoding ('+' is not a space in a path). nullopt on a bad escape.
std::optional<std::string> PercentDecode(std::string_view segment);

// One parameter of a query string ("twin_id=a%20b&since=3"): absent, badly percent-encoded,
// or its decoded value ('+' is a space there, as forms and URLSearchParams encode it). The
// first one counts when a name is repeated.
struct QueryParameter {
  bool present = false;
  bool valid = true;
  std::string value;
};
QueryParameter FindQueryParameter(std::string_view query, std::string_view name);

// A whole number as a header or a query parameter writes it: decimal digits only (leading
// zeros allowed), at most `max`; nullopt for anything else (signs, spaces, overflow).
std::optional<uint64_t> ParseWholeNumber(std::string_view text, uint64_t max);

}  // namespace twins
