#include "json.hpp"

#include <cstdlib>
#include <cstring>
#include <vector>

namespace twins {
namespace {

std::string ChildPath(const std::string& path, const cJSON* child, int index) {
  if (child->string == nullptr) return path + "[" + std::to_string(index) + "]";
  return path + "." + child->string;
}

Status CheckTree(const cJSON* json, const std::string& path, bool inside_array, bool reject_reserved) {
  if (cJSON_IsNull(json) && inside_array) {
    return Status::InvalidArgument("data", path + ": arrays cannot contain null");
  }
  if (cJSON_IsObject(json)) {
    std::vector<std::string_view> keys;
    for (const cJSON* child = json->child; child != nullptr; child = child->next) {
      std::string_view key = child->string;
      if (reject_reserved && !key.empty() && key[0] == '_') {
        return Status::InvalidArgument("data", ChildPath(path, child, 0) +
                                                   ": keys starting with '_' are reserved");
      }
      for (std::string_view seen : keys) {
        if (seen == key) return Status::InvalidArgument("data", ChildPath(path, child, 0) + ": duplicate key");
      }
      keys.push_back(key);
    }
  }
  int index = 0;
  bool array = cJSON_IsArray(json);
  for (const cJSON* child = json->child; child != nullptr && (array || cJSON_IsObject(json));
       child = child->next, ++index) {
    Status s = CheckTree(child, ChildPath(path, child, index), inside_array || array, reject_reserved);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

int JsonDepth(const cJSON* json) {
  if (!cJSON_IsObject(json) && !cJSON_IsArray(json)) return 0;
  int deepest = 0;
  for (const cJSON* child = json->child; child != nullptr; child = child->next) {
    int d = JsonDepth(child);
    if (d > deepest) deepest = d;
  }
  return deepest + 1;
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and values past U+10FFFF are not UTF-8.
    static const uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return false;
    p += extra + 1;
  }
  return true;
}

Result<Json> ParseJson(std::string_view text, std::string_view field) {
  const std::string name(field);
  if (text.empty()) return Status::InvalidArgument(name, "empty payload, a JSON object is expected");
  if (std::memchr(text.data(), '\0', text.size()) != nullptr || !IsValidUtf8(text)) {
    return Status::InvalidArgument(name, "payload is not valid UTF-8 JSON text");
  }
  // cJSON checks "nothing after the value" by finding the terminating NUL, which a
  // length-delimited MQTT payload does not carry: hand it a terminated copy.
  const std::string copy(text);
  const char* end = nullptr;
  Json json(cJSON_ParseWithLengthOpts(copy.c_str(), copy.size() + 1, &end, true));
  if (!json) {
    size_t offset = end != nullptr ? static_cast<size_t>(end - copy.c_str()) : 0;
    return Status::InvalidArgument(name, "invalid JSON near byte " + std::to_string(offset));
  }
  return json;
}

std::string PrintJson(const cJSON* json) {
  char* text = cJSON_PrintUnformatted(json);
  if (text == nullptr) return {};
  std::string out(text);
  cJSON_free(text);
  return out;
}

std::string QuoteJson(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          static const char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;
        }
    }
  }
  out += '"';
  return out;
}

Status CheckDataTree(const cJSON* data, bool reject_reserved_keys) {
  return CheckTree(data, "data", false, reject_reserved_keys);
}

}  // namespace twins
