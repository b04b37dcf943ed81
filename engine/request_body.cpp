#include "engine/request_body.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/json.hpp"
#include "engine/json_scan.hpp"
#include "engine/key_index.hpp"

namespace twins {
namespace {

// Deeper text is refused as cJSON refuses it: the reader recurses once per level.
constexpr int kMaxNesting = 1000;

// Bytes that a string holds as they are: not a quote, a backslash or a control character.
constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 256; ++c) plain[c] = c != '"' && c != '\\';
  return plain;
}();

// One level of the path from `data` to the value being read, for error messages.
struct PathStep {
  size_t key_offset = 0;  // of the key's stored form in the output, for a member
  size_t key_length = 0;
  long index = -1;  // for an array element
};

class BodyReader {
 public:
  // The path and key stacks are the thread's, kept from one body to the next: a small
  // patch body is read in about the time two allocations for them would take.
  BodyReader(std::string_view text, bool read_data)
      : text_(text), read_data_(read_data), path_(ThreadPath()), keys_(ThreadKeys()) {
    path_.clear();
    keys_.clear();
  }
  // A body of thousands of keys or levels leaves its thread no more than what small ones use.
  ~BodyReader() {
    constexpr size_t kKept = 256;
    if (path_.capacity() > kKept) std::vector<PathStep>().swap(path_);
    if (keys_.capacity() > kKept) std::vector<std::pair<size_t, size_t>>().swap(keys_);
  }

  bool ReadBody(RequestBody* body) {
    body_ = body;
    SkipSpace();
    if (!Expect('{')) return false;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
    } else {
      do {
        SkipSpace();
        std::string key;
        if (!ReadString(&key) || !ExpectAfterSpace(':')) return false;
        SkipSpace();
        if (!ReadMember(key)) return false;
        SkipSpace();
      } while (Consume(','));
      if (!Expect('}')) return false;
    }
    SkipSpace();
    return pos_ == text_.size() || Fail();
  }

  size_t error_offset() const { return error_offset_; }

  // The text is one string token: its value, unescaped.
  bool ReadWholeString(std::string* value) { return ReadString(value) && pos_ == text_.size(); }

 private:
  // Top-level members: the first "version" and "data" count, the rest is only checked.
  bool ReadMember(const std::string& key) {
    if (key == "version" && body_->version_kind == RequestBody::Version::kAbsent) return ReadVersion();
    if (key == "data" && read_data_ && !body_->data) {
      body_->data.emplace();
      body_->data->reserve(text_.size());
      out_ = &*body_->data;
      body_->data_is_object = Peek() == '{';
      return ReadValue(1, false);
    }
    std::string ignored;
    out_ = &ignored;
    return ReadValue(1, false);
  }

  bool ReadVersion() {
    std::string token;
    out_ = &token;
    const size_t start = pos_;
    if (!ReadValue(1, false)) return false;
    if (token == "null") {
      body_->version_kind = RequestBody::Version::kNull;
    } else if (token[0] == '-' || (token[0] >= '0' && token[0] <= '9')) {
      const bool exact = ExactVersion(text_.substr(start, pos_ - start), &body_->version);
      body_->version_kind = exact ? RequestBody::Version::kNumber : RequestBody::Version::kOther;
    } else {
      body_->version_kind = RequestBody::Version::kOther;
    }
    return true;
  }

  // The exact value of a JSON number token (as sent: `token` must be the request's own text,
  // not its shortest form), when it is an integer from 0 to kMaxVersion. Decimal arithmetic on
  // the digits, so 9007199254740993 is not taken for the double it rounds to.
  static bool ExactVersion(std::string_view token, uint64_t* version) {
    const bool negative = token[0] == '-';
    if (negative) token.remove_prefix(1);
    const size_t mantissa_end = std::min(token.find_first_of("eE"), token.size());
    long exponent = 0;
    if (mantissa_end < token.size()) {
      std::string_view text = token.substr(mantissa_end + 1);
      if (text[0] == '+') text.remove_prefix(1);
      // Beyond a few digits the exponent only matters by its sign (the digits are few).
      const bool exponent_negative = text[0] == '-';
      if (exponent_negative) text.remove_prefix(1);
      for (char c : text) exponent = std::min(exponent * 10 + (c - '0'), 100000L);
      if (exponent_negative) exponent = -exponent;
    }
    std::string digits;  // the mantissa's digits without the point: value = digits * 10^exponent
    for (size_t i = 0; i < mantissa_end; ++i) {
      if (token[i] != '.') {
        digits += token[i];
      } else {
        exponent -= static_cast<long>(mantissa_end - i - 1);
      }
    }
    digits.erase(0, std::min(digits.find_first_not_of('0'), digits.size()));
    while (!digits.empty() && digits.back() == '0') {
      digits.pop_back();
      ++exponent;
    }
    if (digits.empty()) {  // zero, -0 included
      *version = 0;
      return true;
    }
    if (negative || exponent < 0 || digits.size() + exponent > 16) return false;  // 2^53 has 16 digits
    uint64_t value = 0;
    for (char c : digits) value = value * 10 + static_cast<uint64_t>(c - '0');
    for (long i = 0; i < exponent; ++i) value *= 10;
    if (value > kMaxVersion) return false;
    *version = value;
    return true;
  }

  // `depth`: of the value about to be read, `data` being 1; rules apply only inside `data`.
  bool ReadValue(int depth, bool inside_array) {
    const bool in_data = out_ == (body_->data ? &*body_->data : nullptr);
    switch (Peek()) {
      case '{':
      case '[':
        if (depth > kMaxNesting) return Fail();
        if (in_data && depth > body_->data_depth) body_->data_depth = depth;
        return Peek() == '{' ? ReadObject(depth, inside_array, in_data) : ReadArray(depth, in_data);
      case '"':
        return AppendString();
      case 't':
        return ReadLiteral("true");
      case 'f':
        return ReadLiteral("false");
      case 'n':
        if (in_data && inside_array) RuleBroken("arrays cannot contain null");
        return ReadLiteral("null");
      default:
        return ReadNumber(in_data);
    }
  }

  bool ReadObject(int depth, bool inside_array, bool in_data) {
    ++pos_;
    *out_ += '{';
    const size_t object_start = out_->size();
    const size_t first_key = keys_.size();
    std::unique_ptr<KeyIndex> large_object;  // its keys, once they are many
    SkipSpace();
    if (Consume('}')) {
      *out_ += '}';
      return true;
    }
    if (in_data) path_.push_back({0, 0, -1});  // the member's step, the last when it is read
    do {
      SkipSpace();
      if (out_->size() > object_start) *out_ += ',';
      const size_t key_offset = out_->size() + 1;
      if (!AppendString() || !ExpectAfterSpace(':')) return false;
      const size_t key_length = out_->size() - key_offset - 1;
      *out_ += ':';
      if (in_data) {
        path_.back().key_offset = key_offset;
        path_.back().key_length = key_length;
        // The stored form starts with '_' exactly when the key does.
        if (key_length > 0 && (*out_)[key_offset] == '_' && body_->reserved_key_path.empty()) {
          body_->reserved_key_path = Path();
        }
        if (IsDuplicate(first_key, key_offset, key_length, &large_object)) RuleBroken("duplicate key");
      }
      SkipSpace();
      if (!ReadValue(depth + 1, inside_array)) return false;
      SkipSpace();
    } while (Consume(','));
    if (in_data) path_.pop_back();
    if (!Expect('}')) return false;
    *out_ += '}';
    keys_.resize(first_key);
    return true;
  }

  // Keys are compared in their stored form, where "b" and "\u0062" are one spelling. The
  // first keys of an object are searched linearly (most objects have a few: cheaper than
  // hashing); from kIndexFrom on they are indexed, so an object of n keys costs O(n).
  static constexpr size_t kIndexFrom = 16;

  // Records the key; true if the object already had it.
  bool IsDuplicate(size_t first_key, size_t key_offset, size_t key_length, std::unique_ptr<KeyIndex>* index) {
    const std::string_view key(out_->data() + key_offset, key_length);
    auto key_at = [this](uint32_t i) { return std::string_view(out_->data() + keys_[i].first, keys_[i].second); };
    if (*index) {
      if ((*index)->Insert(key, static_cast<uint32_t>(keys_.size()), key_at) != KeyIndex::kNone) return true;
    } else {
      for (size_t i = first_key; i < keys_.size(); ++i) {
        if (key_at(static_cast<uint32_t>(i)) == key) return true;
      }
    }
    keys_.emplace_back(key_offset, key_length);
    if (!*index && keys_.size() - first_key == kIndexFrom) {
      *index = std::make_unique<KeyIndex>();
      for (size_t i = first_key; i < keys_.size(); ++i) {
        (void)(*index)->Insert(key_at(static_cast<uint32_t>(i)), static_cast<uint32_t>(i), key_at);
      }
    }
    return false;
  }

  bool ReadArray(int depth, bool in_data) {
    ++pos_;
    *out_ += '[';
    SkipSpace();
    if (Consume(']')) {
      *out_ += ']';
      return true;
    }
    // One step for all the elements, its index kept current: an array of 32 000 numbers
    // pushed and popped a step per element.
    if (in_data) path_.push_back({0, 0, 0});
    long index = 0;
    do {
      if (index > 0) *out_ += ',';
      SkipSpace();
      const size_t copied = CopyIntegerRun();
      if (copied > 0) {
        index += static_cast<long>(copied);
      } else {
        if (in_data) path_.back().index = index;
        if (!ReadValue(depth + 1, true)) return false;
        ++index;
      }
      SkipSpace();
    } while (Consume(','));
    if (in_data) path_.pop_back();
    if (!Expect(']')) return false;
    *out_ += ']';
    return true;
  }

  // The elements from here that are short integers written without spaces ("0,1,-25"), as
  // long arrays mostly are: each is its own stored form (ReadNumber's shortcut), so the run
  // is copied in one piece. Stops before the first element that is not one, or after one
  // that ends the array; returns how many it copied (none breaks a rule: not null, in range).
  size_t CopyIntegerRun() {
    const size_t start = pos_;
    size_t count = 0;
    for (size_t at = pos_;;) {
      const size_t end = ShortIntegerEnd(at);
      if (end == 0 || end == text_.size() || (text_[end] != ',' && text_[end] != ']')) break;
      pos_ = end;
      ++count;
      if (text_[end] == ']') break;
      at = end + 1;
    }
    if (count > 0) out_->append(text_, start, pos_ - start);
    return count;
  }

  // Just past the integer token at `at` when it is its own stored form, else 0: an integer of
  // up to 15 digits is exact as a double, and without trailing zeros its shortest form is
  // itself (with them, "1e+14" can be shorter; 0 and -0 are short already). No leading zero
  // (not JSON). What follows it is the caller's to check.
  size_t ShortIntegerEnd(size_t at) const {
    if (at < text_.size() && text_[at] == '-') ++at;
    const size_t first = at;
    while (at < text_.size() && at - first < 16 && text_[at] >= '0' && text_[at] <= '9') ++at;
    const size_t digits = at - first;
    if (digits == 0 || digits > 15) return 0;
    if (digits > 1 && (text_[first] == '0' || text_[at - 1] == '0')) return 0;
    return at;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, written back as the shortest text that
  // reads as the same double.
  bool ReadNumber(bool in_data) {
    const size_t start = pos_;
    Consume('-');
    if (Consume('0')) {
    } else if (!Digits()) {
      return Fail();
    }
    if (Consume('.') && !Digits()) return Fail();
    if (Consume('e') || Consume('E')) {
      if (!Consume('+')) Consume('-');
      if (!Digits()) return Fail();
    }
    const char* first = text_.data() + start;
    const char* last = text_.data() + pos_;
    if (ShortIntegerEnd(start) == pos_) {  // its own stored form
      out_->append(first, last - first);
      return true;
    }
    double value = 0;
    if (std::from_chars(first, last, value).ec == std::errc::result_out_of_range) {
      // from_chars refuses underflow too, which JSON readers take as (nearly) zero.
      value = std::strtod(std::string(first, last).c_str(), nullptr);
    }
    if (!std::isfinite(value) && in_data) RuleBroken("number out of range");
    char buffer[32];
    out_->append(buffer, std::to_chars(buffer, buffer + sizeof buffer, value).ptr);
    return true;
  }

  bool Digits() {
    const size_t start = pos_;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
    return pos_ > start;
  }

  // A string token, appended to the output in the stored form. A string without escapes is
  // already in it: copied as it is; others are decoded and written back, unless in it too.
  bool AppendString() {
    const size_t start = pos_;
    if (!Expect('"')) return false;
    while (pos_ < text_.size() && kPlain[static_cast<unsigned char>(text_[pos_])]) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      ++pos_;
      out_->append(text_, start, pos_ - start);
      return true;
    }
    // With escapes: a token escaped as the stored form escapes (text this program wrote, or
    // a client that escapes the same way) is valid and in that form already, copied as it is.
    const char* close = StoredStringEnd(text_.data() + pos_, text_.data() + text_.size());
    if (close != nullptr) {
      out_->append(text_, start, close - text_.data() - start);
      pos_ = close - text_.data();
      return true;
    }
    pos_ = start;
    std::string value;
    if (!ReadString(&value)) return false;
    AppendQuoted(value, out_);
    return true;
  }

  // A string token, unescaped. The text is known to be valid UTF-8.
  bool ReadString(std::string* value) {
    if (!Expect('"')) return false;
    while (true) {
      const size_t run = pos_;
      while (pos_ < text_.size() && kPlain[static_cast<unsigned char>(text_[pos_])]) ++pos_;
      value->append(text_, run, pos_ - run);
      if (pos_ == text_.size() || static_cast<unsigned char>(text_[pos_]) < 0x20) return Fail();
      if (text_[pos_++] == '"') return true;
      if (!ReadEscape(value)) return false;
    }
  }

  bool ReadEscape(std::string* value) {
    if (pos_ == text_.size()) return Fail();
    const char c = text_[pos_++];
    switch (c) {
      case '"':
      case '\\':
      case '/':
        *value += c;
        return true;
      case 'b':
        *value += '\b';
        return true;
      case 'f':
        *value += '\f';
        return true;
      case 'n':
        *value += '\n';
        return true;
      case 'r':
        *value += '\r';
        return true;
      case 't':
        *value += '\t';
        return true;
      case 'u':
        break;
      default:
        return Fail();
    }
    uint32_t code;
    if (!Hex4(&code)) return false;
    if (code >= 0xDC00 && code <= 0xDFFF) return Fail();  // a low surrogate alone
    if (code >= 0xD800 && code <= 0xDBFF) {
      uint32_t low;
      if (!Consume('\\') || !Consume('u') || !Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return Fail();
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    }
    if (code == 0) return Fail();  // C strings, cJSON's included, would cut it short
    AppendUtf8(code, value);
    return true;
  }

  bool Hex4(uint32_t* code) {
    if (text_.size() - pos_ < 4) return Fail();
    *code = 0;
    for (int i = 0; i < 4; ++i, ++pos_) {
      const char h = text_[pos_];
      uint32_t digit;
      if (h >= '0' && h <= '9') {
        digit = h - '0';
      } else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') {
        digit = (h | 0x20) - 'a' + 10;
      } else {
        return Fail();
      }
      *code = *code << 4 | digit;
    }
    return true;
  }

  static void AppendUtf8(uint32_t code, std::string* out) {
    if (code < 0x80) {
      *out += static_cast<char>(code);
    } else if (code < 0x800) {
      *out += static_cast<char>(0xC0 | code >> 6);
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      *out += static_cast<char>(0xE0 | code >> 12);
      *out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | code >> 18);
      *out += static_cast<char>(0x80 | (code >> 12 & 0x3F));
      *out += static_cast<char>(0x80 | (code >> 6 & 0x3F));
      *out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  bool ReadLiteral(std::string_view word) {
    if (text_.compare(pos_, word.size(), word) != 0) return Fail();
    pos_ += word.size();
    out_->append(word);
    return true;
  }

  // "data.a[2].b", built only for an error message.
  std::string Path() const {
    std::string path = "data";
    for (const PathStep& step : path_) {
      if (step.index >= 0) {
        path += "[" + std::to_string(step.index) + "]";
      } else {
        path += '.';
        path.append(*body_->data, step.key_offset, step.key_length);
      }
    }
    return path;
  }

  void RuleBroken(const char* what) {
    if (body_->data_error.ok()) body_->data_error = Status::InvalidArgument("data", Path() + ": " + what);
  }

  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (pos_ == text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool Expect(char c) { return Consume(c) || Fail(); }
  bool ExpectAfterSpace(char c) {
    SkipSpace();
    return Expect(c);
  }
  void SkipSpace() {
    while (pos_ < text_.size() &&
           (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Fail() {
    error_offset_ = pos_;
    return false;
  }

  std::string_view text_;
  const bool read_data_;
  size_t pos_ = 0;
  size_t error_offset_ = 0;
  RequestBody* body_ = nullptr;
  std::string* out_ = nullptr;  // where the value being read is written
  static std::vector<PathStep>& ThreadPath() {
    thread_local std::vector<PathStep> path;
    return path;
  }
  static std::vector<std::pair<size_t, size_t>>& ThreadKeys() {
    thread_local std::vector<std::pair<size_t, size_t>> keys;
    return keys;
  }

  std::vector<PathStep>& path_;
  std::vector<std::pair<size_t, size_t>>& keys_;  // stored forms of the keys of the open objects
};

}  // namespace

bool UnescapeJsonString(std::string_view token, std::string* value) {
  return BodyReader(token, false).ReadWholeString(value);
}

Result<RequestBody> ParseRequestBody(std::string_view text, bool read_data, std::string_view field) {
  const std::string name(field);
  if (text.empty()) return Status::InvalidArgument(name, "empty payload, a JSON object is expected");
  if (std::memchr(text.data(), '\0', text.size()) != nullptr || !IsValidUtf8(text)) {
    return Status::InvalidArgument(name, "payload is not valid UTF-8 JSON text");
  }
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start != std::string_view::npos && text[start] != '{') {
    return Status::InvalidArgument(name, "request must be a JSON object {\"version\"?: N, \"data\": {...}}");
  }
  RequestBody body;
  BodyReader reader(text, read_data);
  if (!reader.ReadBody(&body)) {
    return Status::InvalidArgument(name, "invalid JSON near byte " + std::to_string(reader.error_offset()));
  }
  return body;
}

}  // namespace twins
