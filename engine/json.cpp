#include "engine/json.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace twins {

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    // Most text is ASCII: eight bytes at a time while no high bit is set.
    uint64_t word;
    if (end - p >= 8 && (std::memcpy(&word, p, 8), (word & 0x8080808080808080ULL) == 0)) {
      p += 8;
      continue;
    }
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
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
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

}  // namespace twins
