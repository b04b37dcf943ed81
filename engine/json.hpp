// Owning cJSON handles and the stored form of JSON.
#pragma once

#include <cjson/cJSON.h>

#include <memory>
#include <string>
#include <string_view>

namespace twins {

struct JsonDeleter {
  void operator()(cJSON* json) const { cJSON_Delete(json); }
};
using Json = std::unique_ptr<cJSON, JsonDeleter>;

// Compact serialisation (no whitespace), the form documents are stored in. Numbers print
// as the shortest text that reads back to the same double.
std::string PrintJson(const cJSON* json);
void AppendJson(const cJSON* json, std::string* out);

// JSON string literal for `text` (quotes and escapes included).
std::string QuoteJson(std::string_view text);
void AppendQuoted(std::string_view text, std::string* out);

bool IsValidUtf8(std::string_view text);

}  // namespace twins
