#include "merge.hpp"

#include <array>
#include <cstring>
#include <vector>

#include "json.hpp"

namespace twins {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

Status Corrupt() { return Status::Internal("stored document is not a JSON object"); }

// Walks JSON text written by this program. It checks only what keeps it in bounds and the
// object structure the merge relies on; values it does not descend into are skipped whole.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  bool Consume(char c) {
    SkipSpace();
    if (pos_ == text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  bool AtEnd() {
    SkipSpace();
    return pos_ == text_.size();
  }

  // The string token here, quotes included.
  bool String(std::string_view* token) {
    SkipSpace();
    size_t start = pos_;
    if (!SkipString()) return false;
    *token = text_.substr(start, pos_ - start);
    return true;
  }

  // The value token here, nested values included.
  bool Value(std::string_view* token) {
    SkipSpace();
    size_t start = pos_;
    if (pos_ == text_.size()) return false;
    char c = text_[pos_];
    if (c == '"') {
      if (!SkipString()) return false;
    } else if (c == '{' || c == '[') {
      if (!SkipNested()) return false;
    } else {
      while (pos_ < text_.size() && !IsSpace(text_[pos_]) && text_[pos_] != ',' && text_[pos_] != '}' &&
             text_[pos_] != ']') {
        ++pos_;
      }
      if (pos_ == start) return false;
    }
    *token = text_.substr(start, pos_ - start);
    return true;
  }

 private:
  void SkipSpace() {
    while (pos_ < text_.size() && IsSpace(text_[pos_])) ++pos_;
  }

  // A string ends at the first quote not escaped, that is not preceded by an odd run of
  // backslashes; memchr finds quotes far faster than a byte loop finds anything.
  bool SkipString() {
    if (pos_ == text_.size() || text_[pos_] != '"') return false;
    for (size_t from = pos_ + 1;;) {
      const void* quote = std::memchr(text_.data() + from, '"', text_.size() - from);
      if (quote == nullptr) return false;
      size_t at = static_cast<const char*>(quote) - text_.data();
      size_t backslashes = 0;
      while (text_[at - 1 - backslashes] == '\\') ++backslashes;
      from = at + 1;
      if (backslashes % 2 == 0) {
        pos_ = from;
        return true;
      }
    }
  }

  bool SkipNested() {
    static constexpr auto kStructural = [] {
      std::array<bool, 256> table{};
      for (unsigned char c : {'"', '{', '}', '[', ']'}) table[c] = true;
      return table;
    }();
    int depth = 0;
    while (pos_ < text_.size()) {
      const char c = text_[pos_];
      if (!kStructural[static_cast<unsigned char>(c)]) {
        ++pos_;
      } else if (c == '"') {
        if (!SkipString()) return false;
      } else {
        ++pos_;
        depth += c == '{' || c == '[' ? 1 : -1;
        if (depth == 0) return true;
      }
    }
    return false;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// The text of a JSON string token without its quotes, unescaped.
std::string Unescape(std::string_view token) {
  Json parsed(cJSON_ParseWithLength(token.data(), token.size()));
  return cJSON_IsString(parsed.get()) ? std::string(parsed->valuestring) : std::string();
}

bool KeyEquals(std::string_view token, const char* key) {
  std::string_view inner = token.substr(1, token.size() - 2);
  if (inner.find('\\') == std::string_view::npos) return inner == key;
  return Unescape(token) == key;
}

// A patch value where the target has no object to merge into: merging an object into {}
// drops its null members, at every depth.
void AppendPatchValue(const cJSON* value, std::string* out) {
  if (!cJSON_IsObject(value)) {
    AppendJson(value, out);
    return;
  }
  *out += '{';
  bool first = true;
  for (const cJSON* member = value->child; member != nullptr; member = member->next) {
    if (cJSON_IsNull(member)) continue;
    if (!first) *out += ',';
    first = false;
    AppendQuoted(member->string, out);
    *out += ':';
    AppendPatchValue(member, out);
  }
  *out += '}';
}

Status MergeObject(std::string_view target, const cJSON* patch, std::string* out) {
  Reader in(target);
  if (!in.Consume('{')) return Corrupt();
  std::vector<const cJSON*> unmatched;
  for (const cJSON* change = patch->child; change != nullptr; change = change->next) unmatched.push_back(change);

  *out += '{';
  bool first = true;
  auto separate = [&] {
    if (!first) *out += ',';
    first = false;
  };
  if (!in.Consume('}')) {
    do {
      std::string_view key, value;
      if (!in.String(&key) || !in.Consume(':') || !in.Value(&value)) return Corrupt();
      const cJSON* change = nullptr;
      for (const cJSON*& candidate : unmatched) {
        if (candidate != nullptr && KeyEquals(key, candidate->string)) {
          change = candidate;
          candidate = nullptr;
          break;
        }
      }
      if (cJSON_IsNull(change)) continue;
      separate();
      out->append(key);
      *out += ':';
      if (change == nullptr) {
        out->append(value);
      } else if (cJSON_IsObject(change) && value[0] == '{') {
        Status s = MergeObject(value, change, out);
        if (!s.ok()) return s;
      } else {
        AppendPatchValue(change, out);
      }
    } while (in.Consume(','));
    if (!in.Consume('}')) return Corrupt();
  }
  if (!in.AtEnd()) return Corrupt();
  for (const cJSON* change : unmatched) {
    if (change == nullptr || cJSON_IsNull(change)) continue;
    separate();
    AppendQuoted(change->string, out);
    *out += ':';
    AppendPatchValue(change, out);
  }
  *out += '}';
  return Status::Ok();
}

}  // namespace

Status MergePatch(std::string_view target, const cJSON* patch, std::string* out) {
  if (!cJSON_IsObject(patch)) return Status::InvalidArgument("data", "a patch must be a JSON object");
  out->reserve(out->size() + target.size() + 64);
  return MergeObject(target, patch, out);
}

}  // namespace twins
