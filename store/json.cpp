#include "json.hpp"

#include <cstdlib>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace twins {
namespace {

// The JSON path of the node at the top of `stack` ("data.a[2].b"), built only for an error
// message so that valid documents cost no string building.
std::string PathOf(const std::vector<const cJSON*>& stack) {
  std::string path = "data";
  for (size_t i = 1; i < stack.size(); ++i) {
    const cJSON* node = stack[i];
    if (cJSON_IsArray(stack[i - 1])) {
      int index = 0;
      for (const cJSON* sibling = stack[i - 1]->child; sibling != node; sibling = sibling->next) ++index;
      path += "[" + std::to_string(index) + "]";
    } else {
      path += ".";
      path += node->string;
    }
  }
  return path;
}

Status CheckTree(std::vector<const cJSON*>* stack, bool inside_array, bool reject_reserved) {
  const cJSON* json = stack->back();
  if (cJSON_IsNull(json) && inside_array) {
    return Status::InvalidArgument("data", PathOf(*stack) + ": arrays cannot contain null");
  }
  if (cJSON_IsNumber(json) && !std::isfinite(json->valuedouble)) {
    return Status::InvalidArgument("data", PathOf(*stack) + ": number out of range");
  }
  const bool object = cJSON_IsObject(json);
  if (!object && !cJSON_IsArray(json)) return Status::Ok();
  for (const cJSON* child = json->child; child != nullptr; child = child->next) {
    stack->push_back(child);
    if (object) {
      std::string_view key = child->string;
      if (reject_reserved && !key.empty() && key[0] == '_') {
        return Status::InvalidArgument("data", PathOf(*stack) + ": keys starting with '_' are reserved");
      }
      for (const cJSON* earlier = json->child; earlier != child; earlier = earlier->next) {
        if (key == earlier->string) return Status::InvalidArgument("data", PathOf(*stack) + ": duplicate key");
      }
    }
    Status s = CheckTree(stack, inside_array || !object, reject_reserved);
    if (!s.ok()) return s;
    stack->pop_back();
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

// cJSON prints each number with sprintf and checks it with sscanf, most of a small patch's
// cost; std::to_chars gives the shortest text that reads back to the same double.
void AppendJson(const cJSON* json, std::string* out) {
  if (cJSON_IsObject(json) || cJSON_IsArray(json)) {
    const bool object = cJSON_IsObject(json);
    *out += object ? '{' : '[';
    for (const cJSON* child = json->child; child != nullptr; child = child->next) {
      if (child != json->child) *out += ',';
      if (object) {
        AppendQuoted(child->string, out);
        *out += ':';
      }
      AppendJson(child, out);
    }
    *out += object ? '}' : ']';
  } else if (cJSON_IsString(json)) {
    AppendQuoted(json->valuestring, out);
  } else if (cJSON_IsNumber(json)) {
    char buffer[32];
    auto end = std::to_chars(buffer, buffer + sizeof buffer, json->valuedouble).ptr;
    out->append(buffer, end);
  } else if (cJSON_IsTrue(json)) {
    *out += "true";
  } else if (cJSON_IsFalse(json)) {
    *out += "false";
  } else {
    *out += "null";
  }
}

std::string PrintJson(const cJSON* json) {
  std::string out;
  AppendJson(json, &out);
  return out;
}

void AppendQuoted(std::string_view text, std::string* out) {
  *out += '"';
  size_t plain = 0;  // start of the run of characters that need no escape
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text, plain, i - plain);
    plain = i + 1;
    switch (c) {
      case '"': *out += "\\\""; break;
      case '\\': *out += "\\\\"; break;
      case '\n': *out += "\\n"; break;
      case '\r': *out += "\\r"; break;
      case '\t': *out += "\\t"; break;
      default: {
        static const char kHex[] = "0123456789abcdef";
        const char escape[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out->append(escape, sizeof escape);
      }
    }
  }
  out->append(text, plain, text.size() - plain);
  *out += '"';
}

std::string QuoteJson(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  AppendQuoted(text, &out);
  return out;
}

Status CheckDataTree(const cJSON* data, bool reject_reserved_keys) {
  std::vector<const cJSON*> stack{data};
  return CheckTree(&stack, false, reject_reserved_keys);
}

}  // namespace twins
