#include "engine/merge.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/json_scan.hpp"
#include "engine/key_index.hpp"

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

  // The key token here, quotes included, and its form.
  bool Key(std::string_view* token, KeyForm* form) {
    SkipSpace();
    size_t start = pos_;
    if (pos_ == text_.size() || text_[pos_] != '"') return false;
    if (!Advance(SkipKeyBody(text_.data() + pos_ + 1, text_.data() + text_.size(), form))) return false;
    *token = text_.substr(start, pos_ - start);
    return true;
  }

  // The text from here to the end.
  std::string_view Rest() const { return text_.substr(pos_); }

  // The value token here, nested values included.
  bool Value(std::string_view* token) {
    SkipSpace();
    size_t start = pos_;
    if (pos_ == text_.size()) return false;
    char c = text_[pos_];
    if (c == '"') {
      bool escaped = false;
      if (!SkipString(&escaped)) return false;
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

  bool SkipString(bool* escaped) {
    if (pos_ == text_.size() || text_[pos_] != '"') return false;
    return Advance(SkipStringBody(text_.data() + pos_ + 1, text_.data() + text_.size(), escaped));
  }

  bool SkipNested() { return Advance(twins::SkipNested(text_.data() + pos_, text_.data() + text_.size())); }

  bool Advance(const char* to) {
    if (to == nullptr) return false;
    pos_ = to - text_.data();
    return true;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

struct Member {
  std::string_view key;    // the string token, quotes included
  std::string_view value;  // the value token
  KeyForm form;            // the key's spelling
};

bool ReadMember(Reader& in, Member* member) {
  return in.Key(&member->key, &member->form) && in.Consume(':') && in.Value(&member->value);
}

// Calls visit(member) for each member of the object text `object`; false if it is not one.
template <class Visit>
bool ForEachMember(std::string_view object, Visit visit) {
  Reader in(object);
  if (!in.Consume('{')) return false;
  if (!in.Consume('}')) {
    do {
      Member member;
      if (!ReadMember(in, &member) || !visit(member)) return false;
    } while (in.Consume(','));
    if (!in.Consume('}')) return false;
  }
  return in.AtEnd();
}

// The members after the last one a patch changes, from just after a comma to the object's
// closing brace, when they are compact and end the object where the text ends: they can be
// copied as they are. Only their nesting and strings are checked, not their syntax: the
// target is text this program wrote.
bool IsCompactTail(std::string_view rest) {
  if (rest.empty() || rest[0] == '}') return false;  // a comma before the brace
  return SkipNested(rest.data(), rest.data() + rest.size(), 1, true) == rest.data() + rest.size();
}

bool IsNull(std::string_view value) { return value == "null"; }
bool IsObject(std::string_view value) { return value[0] == '{'; }

// A patch value where the target has no object to merge into: merging an object into {}
// drops its null members, at every depth.
void AppendPatchValue(std::string_view value, std::string* out) {
  if (!IsObject(value)) {
    out->append(value);
    return;
  }
  *out += '{';
  bool first = true;
  ForEachMember(value, [&](const Member& member) {
    if (IsNull(member.value)) return true;
    if (!first) *out += ',';
    first = false;
    out->append(member.key);
    *out += ':';
    AppendPatchValue(member.value, out);
    return true;
  });
  *out += '}';
}

// How large `out` may grow: `end`, the limit of `bytes` after what it held before the merge.
struct OutputLimit {
  size_t end;
  size_t bytes;
};

Status TooLarge(OutputLimit limit) {
  return Status::InvalidArgument(
      "data", "document would be larger than the limit of " + std::to_string(limit.bytes) + " bytes");
}

// The patch's members, found by key. The member after the last one matched is tried first,
// by its token: a patch mostly names members in the order they are stored (a client patches
// what it read), and then no key is decoded, checked or hashed. At the first miss the patch's
// keys are taken in their stored form (StoredKey), as the target's are then compared, and
// searched linearly while they are few (a patch changes a few members, and a search of 8
// costs less than hashing one key), through a hash index beyond (KeyIndex): merging n target
// members with m patch members costs O(n + m) in any order.
class PatchMembers {
 public:
  bool Read(std::string_view patch) {
    return ForEachMember(patch, [&](const Member& member) {
      if (count_ < kInline) {
        inline_[count_] = {member, {}};
      } else {
        if (count_ == kInline) {
          // Room for as many members as the patch can hold at ~8 bytes each ("k":1,), so that
          // thousands are not copied again at each doubling.
          more_.reserve(std::max(2 * kInline, patch.size() / 8));
          more_.assign(inline_, inline_ + kInline);
        }
        more_.push_back({member, {}});
      }
      ++count_;
      return true;
    });
  }

  // The unmatched member whose key names the same string as `token`, a key token of the
  // target (`form`: its spelling), marked matched; nullptr if none.
  Member* Take(std::string_view token, KeyForm form) {
    Entry* found = nullptr;
    if (next_ < count_ && SameKey(begin()[next_].member.key, token)) {
      found = begin() + next_;  // the same token names the same string
    } else {
      if (!keyed_) KeyAll();
      const std::string_view key = StoredKey(token, form, &stored_);
      if (!index_) {
        for (Entry* entry = begin(); entry != end(); ++entry) {
          if (!entry->member.key.empty() && SameKey(entry->key, key)) {
            found = entry;
            break;
          }
        }
      } else {
        const uint32_t at = index_->Find(key, KeyAt());
        if (at != KeyIndex::kNone && !more_[at].member.key.empty()) found = &more_[at];
      }
    }
    if (found == nullptr) return nullptr;
    next_ = found - begin() + 1;
    --pending_;
    taken_ = found->member;
    found->member.key = {};  // matched
    return &taken_;
  }

  size_t pending() const { return pending_; }
  void StartMatching() { pending_ = count_; }

  // The members not matched, in patch order.
  template <class Visit>
  void ForEachUnmatched(Visit visit) const {
    for (const Entry* entry = begin(); entry != end(); ++entry) {
      if (!entry->member.key.empty()) visit(entry->member);
    }
  }

 private:
  struct Entry {
    Member member;
    std::string_view key;  // the key in its stored form, once KeyAll()
  };
  static constexpr size_t kInline = 8;  // on the stack up to this many

  // The keys in their stored form, and indexed past kInline members. A checked patch is in
  // that form already; a key in another form (a caller's own text) is written in it into
  // rewritten_, one after the other, and viewed once rewritten_ no longer grows.
  void KeyAll() {
    keyed_ = true;
    struct Span {
      Entry* entry;
      size_t start, size;
    };
    std::vector<Span> spans;
    for (Entry* entry = begin(); entry != end(); ++entry) {
      entry->key = StoredKey(entry->member.key, entry->member.form, &stored_);
      if (entry->key.data() != stored_.data()) continue;  // the token itself
      spans.push_back({entry, rewritten_.size(), stored_.size()});
      rewritten_ += stored_;
    }
    for (const Span& span : spans) span.entry->key = std::string_view(rewritten_).substr(span.start, span.size);
    if (count_ <= kInline) return;
    index_ = std::make_unique<KeyIndex>(count_);
    for (uint32_t i = 0; i < count_; ++i) (void)index_->Insert(more_[i].key, i, KeyAt());
  }

  struct KeyAtFn {
    const std::vector<Entry>* entries;
    std::string_view operator()(uint32_t i) const { return (*entries)[i].key; }
  };
  KeyAtFn KeyAt() const { return {&more_}; }
  Entry* begin() { return count_ <= kInline ? inline_ : more_.data(); }
  Entry* end() { return begin() + count_; }
  const Entry* begin() const { return count_ <= kInline ? inline_ : more_.data(); }
  const Entry* end() const { return begin() + count_; }

  Entry inline_[kInline];
  std::vector<Entry> more_;
  size_t count_ = 0;
  size_t pending_ = 0;
  size_t next_ = 0;  // the member after the last one matched
  Member taken_;
  bool keyed_ = false;
  std::string stored_;               // the last key not in the stored form, in it
  std::string rewritten_;            // the patch's keys not in the stored form, in it, end to end
  std::unique_ptr<KeyIndex> index_;  // of more_, past kInline members
};

// Merging stops as soon as `out` passes the limit.
Status MergeObject(std::string_view target, std::string_view patch, OutputLimit limit, std::string* out) {
  PatchMembers changes;
  if (!changes.Read(patch)) return Status::InvalidArgument("data", "a patch must be a JSON object");
  changes.StartMatching();

  *out += '{';
  bool first = true;
  auto separate = [&] {
    if (!first) *out += ',';
    first = false;
  };
  Reader in(target);
  if (!in.Consume('{')) return Corrupt();
  if (!in.Consume('}')) {
    bool tail_tried = false;  // once: a tail that is not compact is read member by member
    do {
      if (out->size() > limit.end) return TooLarge(limit);
      if (changes.pending() == 0 && !tail_tried) {
        tail_tried = true;
        if (IsCompactTail(in.Rest())) {
          // Every change is made: the members left go as they are, without reading them.
          separate();
          out->append(in.Rest());
          return out->size() > limit.end ? TooLarge(limit) : Status::Ok();
        }
      }
      Member member;
      if (!ReadMember(in, &member)) return Corrupt();
      const Member* change = changes.pending() == 0 ? nullptr : changes.Take(member.key, member.form);
      if (change == nullptr) {
        separate();
        if (member.value.data() == member.key.data() + member.key.size() + 1) {  // compact: one copy
          out->append(member.key.data(), member.key.size() + 1 + member.value.size());
        } else {
          out->append(member.key).append(1, ':').append(member.value);
        }
        continue;
      }
      const std::string_view value = change->value;
      if (IsNull(value)) continue;
      separate();
      out->append(member.key).append(1, ':');
      if (IsObject(value) && IsObject(member.value)) {
        Status s = MergeObject(member.value, value, limit, out);
        if (!s.ok()) return s;
      } else {
        AppendPatchValue(value, out);
      }
    } while (in.Consume(','));
    if (!in.Consume('}')) return Corrupt();
  }
  if (!in.AtEnd()) return Corrupt();
  bool too_large = false;
  changes.ForEachUnmatched([&](const Member& change) {
    if (too_large || IsNull(change.value)) return;
    separate();
    out->append(change.key).append(1, ':');
    AppendPatchValue(change.value, out);
    too_large = out->size() > limit.end;
  });
  if (too_large) return TooLarge(limit);
  *out += '}';
  return out->size() > limit.end ? TooLarge(limit) : Status::Ok();
}

}  // namespace

Status MergePatch(std::string_view target, std::string_view patch, std::string* out, size_t max_bytes) {
  if (patch.empty() || !IsObject(patch)) return Status::InvalidArgument("data", "a patch must be a JSON object");
  const size_t start = out->size();
  const OutputLimit limit{max_bytes > SIZE_MAX - start ? SIZE_MAX : start + max_bytes, max_bytes};
  out->reserve(start + std::min(target.size() + patch.size(), max_bytes));
  return MergeObject(target, patch, limit, out);
}

}  // namespace twins
