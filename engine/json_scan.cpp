#include "engine/json_scan.hpp"

#include "engine/json.hpp"
#include "engine/request_body.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace twins {
namespace {

// Outside strings, compact JSON has no byte below '!' (no whitespace, no control character)
// and none above 0x7F: read as signed, both are below '!'. One rule for both scans below.
bool BreaksCompact(char c) { return static_cast<signed char>(c) < '!'; }

// Bytes [p, limit) of an object or array being skipped, one at a time, with the state the
// caller carries between calls. Returns just past the value's end, `limit` (or a byte past it,
// after an escape) if it goes on, or nullptr where the text ends inside a string or, with
// `compact`, is not compact outside strings.
const char* SkipBytes(const char* p, const char* limit, const char* end, bool compact, int* depth, bool* in_string) {
  while (p < limit) {
    const char c = *p++;
    if (*in_string) {
      if (c == '"') *in_string = false;
      if (c == '\\' && p++ == end) return nullptr;
    } else if (c == '"') {
      *in_string = true;
    } else if (c == '{' || c == '[') {
      ++*depth;
    } else if ((c == '}' || c == ']') && --*depth == 0) {
      return p;
    } else if (compact && BreaksCompact(c)) {
      return nullptr;
    }
  }
  return p;
}

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

// Merging scans every member the patch leaves alone, so this is most of a patch's own cost:
// with SSE2 (every x86-64) it classifies 16 bytes at a time and only looks at single bytes
// around backslashes and where the value may close.
const char* SkipNested(const char* p, const char* end, int depth, bool compact) {
  bool in_string = false;
  while (p < end) {
    const char* limit = end;
#if defined(__SSE2__)
    if (end - p >= 16) {
      const __m128i block = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
      auto mask = [](__m128i bytes) { return static_cast<unsigned>(_mm_movemask_epi8(bytes)); };
      if (mask(_mm_cmpeq_epi8(block, _mm_set1_epi8('\\'))) == 0) {
        // Bit i set: byte i is inside a string (an opening quote counts as inside).
        unsigned inside = mask(_mm_cmpeq_epi8(block, _mm_set1_epi8('"')));
        inside ^= inside << 1;
        inside ^= inside << 2;
        inside ^= inside << 4;
        inside ^= inside << 8;
        if (in_string) inside = ~inside;
        inside &= 0xFFFF;
        in_string = (inside >> 15) & 1;
        // BreaksCompact, 16 bytes at a time.
        if (compact && (mask(_mm_cmplt_epi8(block, _mm_set1_epi8('!'))) & ~inside) != 0) return nullptr;
        // '[' and '{' differ by bit 0x20 only, as ']' and '}' do: one comparison for each pair.
        const __m128i folded = _mm_or_si128(block, _mm_set1_epi8(0x20));
        const unsigned opens = mask(_mm_cmpeq_epi8(folded, _mm_set1_epi8('{'))) & ~inside;
        const unsigned closes = mask(_mm_cmpeq_epi8(folded, _mm_set1_epi8('}'))) & ~inside;
        for (unsigned brackets = opens | closes; brackets != 0; brackets &= brackets - 1) {
          const unsigned bit = brackets & -brackets;
          depth += (opens & bit) ? 1 : -1;
          if (depth == 0) return p + __builtin_ctz(bit) + 1;
        }
        p += 16;
        continue;
      }
      limit = p + 16;
    }
#endif
    p = SkipBytes(p, limit, end, compact, &depth, &in_string);
    if (p == nullptr || depth == 0) return p;
  }
  return nullptr;
}

const char* StoredStringEnd(const char* p, const char* end, bool* escaped) {
  while (p < end) {
    const char c = *p++;
    if (c == '"') return p;
    if (static_cast<unsigned char>(c) < 0x20) return nullptr;
    if (c != '\\') continue;
    if (escaped != nullptr) *escaped = true;
    if (p == end) return nullptr;
    const char e = *p++;
    if (e == '"' || e == '\\' || e == 'n' || e == 'r' || e == 't') continue;
    // \u00XX, lower-case, for the other control characters only (not NUL, nor \n \r \t).
    if (e != 'u' || end - p < 4 || p[0] != '0' || p[1] != '0' || (p[2] != '0' && p[2] != '1') || !IsLowerHex(p[3])) {
      return nullptr;
    }
    const int code = (p[2] - '0') * 16 + (p[3] <= '9' ? p[3] - '0' : p[3] - 'a' + 10);
    if (code == 0 || code == '\n' || code == '\r' || code == '\t') return nullptr;
    p += 4;
  }
  return nullptr;
}

bool IsStoredForm(std::string_view token) {
  const char* const end = token.data() + token.size();
  return token.size() >= 2 && token[0] == '"' && StoredStringEnd(token.data() + 1, end) == end;
}

std::string_view StoredKey(std::string_view token, bool escaped, std::string* scratch) {
  if (!escaped || IsStoredForm(token)) return token;
  std::string name;
  if (!UnescapeJsonString(token, &name)) return {};
  scratch->clear();
  AppendQuoted(name, scratch);
  return *scratch;
}

}  // namespace twins
