// Owning cJSON handles and the JSON checks the twin rules need.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

#include "status.hpp"

namespace twins {

struct JsonDeleter {
  void operator()(cJSON* json) const { cJSON_Delete(json); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

// Parses exactly one JSON value: rejects invalid UTF-8, embedded NULs and trailing
// bytes. `field` names the argument in errors.
Result<Json> ParseJson(std::string_view text, std::string_view field);

// Levels of nested objects and arrays: 0 for a scalar, 1 for {} or [1].
int JsonDepth(const cJSON* json);

// Compact serialisation (no whitespace), the form documents are stored in. Numbers print
// as the shortest text that reads back to the same double.
std::string PrintJson(const cJSON* json);
void AppendJson(const cJSON* json, std::string* out);

// JSON string literal for `text` (quotes and escapes included).
std::string QuoteJson(std::string_view text);
void AppendQuoted(std::string_view text, std::string* out);

// Walks `data` (the `data` object of a request) and rejects what no stored document
// may hold: duplicate keys, nulls anywhere inside an array, numbers beyond a double
// (1e999), and, when
// reject_reserved_keys, keys that begin with '_'. Errors name the JSON path.
Status CheckDataTree(const cJSON* data, bool reject_reserved_keys);

bool IsValidUtf8(std::string_view text);

}  // namespace twins
