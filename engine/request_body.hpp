// Reading a put/patch/delete body, {"version"?: N, "data"?: {...}, ...}, in one pass and
// without building a tree: the whole text is checked as JSON, and `data` is checked by the
// twin rules and rewritten in the stored form (compact, PrintJson's strings and numbers).
//
// Why not a tree: for a 1 KiB put, parsing with cJSON, walking the tree for the checks,
// printing it and freeing it cost four times what this pass costs.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace twins {

// Versions are integers from 0 to 2^53: beyond, JSON numbers (doubles for most readers,
// JavaScript's included) no longer hold every integer, so a version could not round-trip.
// The one rule for request bodies and REST's If-Match.
constexpr uint64_t kMaxVersion = uint64_t{1} << 53;

struct RequestBody {
  // kNumber: a number whose exact value is an integer from 0 to kMaxVersion (`7`, `7.0`,
  // `7e0`, `-0`); kOther: anything else (a string, a fraction, a negative number, 2^53 + 1).
  enum class Version { kAbsent, kNull, kNumber, kOther };
  Version version_kind = Version::kAbsent;
  uint64_t version = 0;  // when kNumber

  std::optional<std::string> data;  // stored form of the first "data" member, when read
  bool data_is_object = false;
  int data_depth = 0;             // nested objects and arrays, `data` itself included
  Status data_error;              // the first twin-rule violation in `data`, by position
  std::string reserved_key_path;  // the first key starting with '_' in `data`, as a path
};

// The value of the JSON string token `token` (quotes included), unescaped, appended to
// `value`; false if `token` is not exactly one string token. `token` must be valid UTF-8.
bool UnescapeJsonString(std::string_view token, std::string* value);

// Fails only when the text is not one JSON object (invalid UTF-8, NUL, syntax, trailing
// bytes); the error names `field`. With read_data false, `data` is checked as JSON only.
Result<RequestBody> ParseRequestBody(std::string_view text, bool read_data, std::string_view field);

}  // namespace twins
