// Scanning JSON text that this program wrote (the stored form, or a checked request's data)
// without parsing it: where a string or a nested value ends. Shared by the merge
// (merge.cpp) and the trigger evaluation (tsdb/points.cpp). They check only what keeps them
// in bounds: never a byte at or past `end` is read.
#pragma once

#include <string>
#include <string_view>

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

// A key token (quotes included) in the form keys are compared in, by the merge and the
// trigger evaluation: its stored form (AppendQuoted's, engine/json.hpp), in which two keys
// are the same token exactly when they name the same string. A token without an escape, or
// whose escapes are those AppendQuoted writes (text this program wrote), is that form already
// and is returned as it is: nothing is decoded. Another spelling ("\u0061" for "a") is decoded
// and written back into `*scratch` (cleared first), which the result then views; a token that
// does not decode gives an empty view, equal to no key. `escaped`: the token holds a backslash.
std::string_view StoredKey(std::string_view token, bool escaped, std::string* scratch);

// Whether the string token `token` (quotes included) is exactly what AppendQuoted writes.
bool IsStoredForm(std::string_view token);

// From just after an opening quote to just after its closing quote, when the string between
// is written as AppendQuoted writes it (then it is valid JSON, given valid UTF-8); nullptr
// where it is not, or is unclosed. Sets *escaped (when given) if it meets a backslash.
const char* StoredStringEnd(const char* p, const char* end, bool* escaped = nullptr);

// How a key token is spelled, found while it is skipped (SkipKeyBody), so that it is not
// scanned again to be compared: `stored`, StoredKey would give the token as it is.
struct KeyForm {
  bool escaped = false;  // it holds a backslash
  bool stored = true;
};

// From just after a key's opening quote to just after its closing quote, nullptr if unclosed;
// its form in *form. One pass for a key in the stored form (text this program wrote, a
// checked request), two for another spelling.
inline const char* SkipKeyBody(const char* p, const char* end, KeyForm* form) {
  form->escaped = false;
  const char* close = StoredStringEnd(p, end, &form->escaped);
  if (close != nullptr) {
    form->stored = true;
    return close;
  }
  form->escaped = false;
  close = SkipStringBody(p, end, &form->escaped);
  form->stored = !form->escaped;  // as StoredKey takes a token without a backslash
  return close;
}

// StoredKey for a key whose form is known: the token itself, without scanning it again.
inline std::string_view StoredKey(std::string_view token, KeyForm form, std::string* scratch) {
  return form.stored ? token : StoredKey(token, true, scratch);
}

}  // namespace twins
