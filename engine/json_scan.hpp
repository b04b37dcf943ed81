// Scanning JSON text that this program wrote (the stored form, or a checked request's data)
// without parsing it: where a string or a nested value ends. Shared by the merge
// (merge.cpp) and the trigger evaluation (tsdb/points.cpp). They check only what keeps them
// in bounds: never a byte at or past `end` is read.
#pragma once

namespace twins {

// From just after an opening quote to just after its closing quote; nullptr if unclosed.
// A byte loop: keys and most string values are a few bytes long, shorter than a call costs.
// Sets *escaped if the string holds a backslash.
inline const char* SkipStringBody(const char* p, const char* end, bool* escaped) {
  while (p < end) {
    const char c = *p++;
    if (c == '"') return p;
    if (c == '\\') {
      *escaped = true;
      if (p++ == end) return nullptr;
    }
  }
  return nullptr;
}

// Just past the bracket that brings `depth` open brackets at p down to none, or nullptr if
// the text ends first (or, with `compact`, has whitespace outside strings). From an opening
// bracket with depth 0, that is the end of the object or array it opens. With SSE2 (every
// x86-64) it classifies 16 bytes at a time and only looks at single bytes around backslashes
// and where the value may close.
const char* SkipNested(const char* p, const char* end, int depth = 0, bool compact = false);

// Just past the value at p of compact text: a string, an object or array, or a number or
// literal (up to the next ',', '}' or ']'); nullptr if the text ends inside a string or a
// nested value, or has no value at p.
inline const char* ValueEnd(const char* p, const char* end) {
  if (p >= end) return nullptr;
  if (*p == '"') {
    bool escaped = false;
    return SkipStringBody(p + 1, end, &escaped);
  }
  if (*p == '{' || *p == '[') return SkipNested(p, end);
  const char* start = p;
  while (p < end && *p != ',' && *p != '}' && *p != ']') ++p;
  return p == start ? nullptr : p;
}

}  // namespace twins
