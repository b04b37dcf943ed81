#include "tsdb/points.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <optional>

#include "engine/json.hpp"
#include "engine/json_scan.hpp"
#include "engine/key_index.hpp"
#include "engine/request_body.hpp"
#include "tsdb/series.hpp"
#include "tsdb/series.hpp"

namespace twins {
namespace {

// The settings in force at one node of the data, and the configuration below it.
struct Scope {
  const ConfigNode* config = nullptr;  // nullptr once the data goes below every configured key
  std::optional<TsdbTrigger> trigger;
  const std::map<std::string, std::string>* tags = nullptr;

  // The scope of the member or element configured by `child` (nullptr: not configured).
  Scope Enter(const ConfigNode* child) const {
    Scope inner{child, trigger, tags};
    if (child == nullptr) return inner;
    if (child->trigger) inner.trigger = child->trigger;
    if (child->tags) inner.tags = &*child->tags;
    return inner;
  }
  // Some key below has settings of its own.
  bool Configures() const { return config != nullptr && !config->children.empty(); }
  // Nothing below can be pushed: no trigger here and no configuration deeper down.
  bool Idle() const { return !trigger && config == nullptr; }
};

// The configured children of one object or array of the data, found by name: in the map
// while they are few, through a hash index of their names past kIndexFrom. A `_config` of
// 8 KiB names ~150 keys of one object, and each of its thousands of members is looked up:
// a search of the map compared ~8 names each. Built once per object walked (a configured
// node stands for one place of the data, so once per write).
class ConfiguredChildren {
 public:
  // A node's children in a list, their names indexed.
  struct Names {
    using Child = const std::pair<const std::string, ConfigNode>*;
    explicit Names(const ConfigNode& config);
    std::vector<Child> children;
    KeyIndex index;
  };
  // The indexes built for one evaluation: held apart, so that this class, made for every object
  // and array walked (most with nothing configured below), has nothing to free.
  using Kept = std::vector<std::unique_ptr<const Names>>;

  ConfiguredChildren(const Scope& scope, Kept* kept) : config_(scope.Configures() ? scope.config : nullptr) {
    if (config_ != nullptr && config_->children.size() > kIndexFrom) names_ = Keep(*config_, kept);
  }

  // `name` is only read when something is configured below.
  const ConfigNode* Find(std::string_view name) const { return config_ == nullptr ? nullptr : Search(name); }

 private:
  struct KeyAt {
    const std::vector<Names::Child>* children;
    std::string_view operator()(uint32_t i) const { return (*children)[i]->first; }
  };
  static constexpr size_t kIndexFrom = 8;

  static const Names* Keep(const ConfigNode& config, Kept* kept) {
    kept->push_back(std::make_unique<const Names>(config));
    return kept->back().get();
  }

  const ConfigNode* Search(std::string_view name) const {
    if (names_ != nullptr) {
      const uint32_t at = names_->index.Find(name, KeyAt{&names_->children});
      return at == KeyIndex::kNone ? nullptr : &names_->children[at]->second;
    }
    auto found = config_->children.find(name);
    return found == config_->children.end() ? nullptr : &found->second;
  }

  const ConfigNode* config_;
  const Names* names_ = nullptr;  // past kIndexFrom children
};

ConfiguredChildren::Names::Names(const ConfigNode& config) : index(config.children.size()) {
  children.reserve(config.children.size());
  for (const auto& child : config.children) {
    children.push_back(&child);
    (void)index.Insert(child.first, static_cast<uint32_t>(children.size() - 1), KeyAt{&children});
  }
}

// Where each object and array of a text ends, for a text whose values are skipped more than
// once: the data before an on-change write, whose objects are searched by key level after
// level (without it, a deep document would be scanned once per level). Indexed in one pass,
// at the first object skipped or the second array: a flat document (thousands of numbers
// under one object, or in one array) never pays for the pass, and an array skipped before it
// is scanned once at most. Small texts are not indexed: scanning them again costs less than
// the index.
class Brackets {
 public:
  static constexpr size_t kIndexFrom = 4096;

  explicit Brackets(std::string_view text) : begin_(text.data()), end_(text.data() + text.size()) {
    if (text.size() < kIndexFrom || text.size() > UINT32_MAX) skipped_ = kNever;
  }

  // Just past the value at p (of this text), nullptr if the text ends inside it.
  const char* ValueEnd(const char* p) {
    if (p >= end_) return nullptr;
    if ((*p == '{' || *p == '[') && (ends_ || (skipped_ != kNever && (++skipped_ == 2 || *p == '{') && Index()))) {
      return begin_ + ends_[p - begin_];
    }
    return twins::ValueEnd(p, end_);
  }
  const char* end() const { return end_; }

 private:
  static constexpr int kNever = -1;

  // Whether the text is indexed: not where it is not well nested.
  [[gnu::noinline]] bool Index() {
    skipped_ = kNever;  // once, whether or not it is well nested
    // Only the entries of opening brackets are written and read: no need to clear the rest.
    std::unique_ptr<uint32_t[]> ends(new uint32_t[end_ - begin_]);
    std::vector<uint32_t> open;
    for (const char* p = begin_; p < end_;) {
      const char c = *p++;
      if (c == '"') {
        bool escaped = false;
        p = SkipStringBody(p, end_, &escaped);
        if (p == nullptr) return false;
      } else if (c == '{' || c == '[') {
        open.push_back(static_cast<uint32_t>(p - 1 - begin_));
      } else if (c == '}' || c == ']') {
        if (open.empty()) return false;
        ends[open.back()] = static_cast<uint32_t>(p - begin_);
        open.pop_back();
      }
    }
    if (open.empty()) ends_ = std::move(ends);
    return ends_ != nullptr;
  }

  const char* begin_;
  const char* end_;
  int skipped_ = 0;                   // objects and arrays skipped, until indexed
  std::unique_ptr<uint32_t[]> ends_;  // by position of an opening bracket: just past its match
};

// The name a key token [key, key_end) stands for: the token without its quotes, or when it
// holds an escape, decoded into `decoded`.
std::string_view KeyName(const char* key, const char* key_end, bool escaped, std::string* decoded) {
  const std::string_view token(key, key_end - key);
  if (!escaped) return token.substr(1, token.size() - 2);
  decoded->clear();
  if (!UnescapeJsonString(token, decoded)) return token;  // corrupt: matches no valid name
  return *decoded;
}

// A member of an object's text: its key token's end, and its value.
struct MemberAt {
  const char* key_end;
  const char* value;
};

// The member whose key starts at p ('"'), nullptr if the text is not a member there; the key's
// spelling in *form.
const char* ReadMember(const char* p, const char* end, KeyForm* form, MemberAt* member) {
  if (p >= end || *p != '"') return nullptr;
  const char* key_end = SkipKeyBody(p + 1, end, form);
  if (key_end == nullptr || key_end >= end || *key_end != ':') return nullptr;
  *member = {key_end, key_end + 1};
  return member->value;
}

// After a value ending at `next` inside a container closed by `close`: the next element's
// start, or nullptr at the container's end (`*done` set) or when the text is broken.
const char* NextElement(const char* next, const char* end, char close, bool* done) {
  if (next == nullptr || next >= end) return nullptr;
  if (*next == ',') return next + 1;
  *done = *next == close;
  return nullptr;
}

// The members of an object of the data before the write, found by key, keys compared in their
// stored form (StoredKey: escaped keys are not decoded). The request names them mostly in the
// same order as they are stored, so the next member is tried first, read as it goes; at the
// first miss the whole object is listed once, and indexed by key past a few members
// (KeyIndex), so that n lookups in an object of m members cost O(n + m).
class BeforeObject {
 public:
  // `object` at '{' of `text`, or nullptr for none.
  BeforeObject(Brackets& text, const char* object) : text_(text) {
    if (object == nullptr || *object != '{') return;
    start_ = next_ = object + 1 < text.end() && object[1] != '}' ? object + 1 : nullptr;
  }

  // The value of the member whose key is the request's key token `token`, nullptr if none.
  // `form`: the token's spelling.
  const char* Find(std::string_view token, KeyForm form) {
    if (start_ == nullptr) return nullptr;
    if (!listed_) {
      if (next_ != nullptr) {
        KeyForm then_form;
        MemberAt member{};
        if (ReadMember(next_, text_.end(), &then_form, &member) != nullptr) {
          const std::string_view then(next_, member.key_end - next_);
          // The same token names the same string; else they are compared in the stored form.
          if (SameKey(then, token) || SameKey(StoredKey(then, then_form, &stored_), StoredKey(token, form, &wanted_))) {
            bool done = false;
            next_ = NextElement(text_.ValueEnd(member.value), text_.end(), '}', &done);
            ++read_;
            return member.value;
          }
        }
      }
      List();
    }
    const std::string_view key = StoredKey(token, form, &wanted_);
    if (read_ < entries_.size() && SameKey(entries_[read_].key, key)) return entries_[read_++].value;
    uint32_t at = KeyIndex::kNone;
    if (index_) {
      at = index_->Find(key, KeyAt{&entries_});
    } else {
      for (uint32_t i = 0; i < entries_.size(); ++i) {
        if (SameKey(entries_[i].key, key)) {
          at = i;
          break;
        }
      }
    }
    if (at == KeyIndex::kNone) return nullptr;
    read_ = at + 1;
    return entries_[at].value;
  }

 private:
  struct Entry {
    std::string_view key;
    const char* value;
  };
  struct KeyAt {
    const std::vector<Entry>* entries;
    std::string_view operator()(uint32_t i) const { return (*entries)[i].key; }
  };
  static constexpr size_t kIndexFrom = 8;

  void List() {
    listed_ = true;
    // Keys not in the stored form (not text this program wrote) are written in it end to end
    // into rewritten_, and viewed once it no longer grows.
    std::vector<std::pair<size_t, size_t>> spans;  // entry, start in rewritten_
    rewritten_.clear();
    for (const char* p = start_; p != nullptr;) {
      KeyForm form;
      MemberAt member{};
      if (ReadMember(p, text_.end(), &form, &member) == nullptr) break;
      std::string_view key = StoredKey(std::string_view(p, member.key_end - p), form, &stored_);
      if (!key.empty() && key.data() == stored_.data()) {
        spans.emplace_back(entries_.size(), rewritten_.size());
        rewritten_ += key;
      }
      entries_.push_back({key, member.value});
      bool done = false;
      p = NextElement(text_.ValueEnd(member.value), text_.end(), '}', &done);
    }
    for (size_t i = 0; i < spans.size(); ++i) {
      const size_t to = i + 1 < spans.size() ? spans[i + 1].second : rewritten_.size();
      entries_[spans[i].first].key = std::string_view(rewritten_).substr(spans[i].second, to - spans[i].second);
    }
    if (entries_.size() <= kIndexFrom) return;
    index_ = std::make_unique<KeyIndex>(entries_.size());
    for (uint32_t i = 0; i < entries_.size(); ++i) (void)index_->Insert(entries_[i].key, i, KeyAt{&entries_});
  }

  Brackets& text_;
  const char* start_ = nullptr;  // the first member, nullptr for an empty or absent object
  const char* next_ = nullptr;   // the member after the last one read in order
  size_t read_ = 0;              // members read in order; after List(), where to try first
  bool listed_ = false;
  std::string wanted_;     // the key looked for, when not in the stored form
  std::string stored_;     // the last key read, when not in the stored form
  std::string rewritten_;  // such keys of the listed members, end to end
  std::vector<Entry> entries_;
  std::unique_ptr<KeyIndex> index_;
};

bool IsNumberStart(char c) { return c == '-' || (c >= '0' && c <= '9'); }

double NumberValue(std::string_view token) {
  double value = 0;
  std::from_chars(token.data(), token.data() + token.size(), value);
  return value;
}

// An array index in decimal, counted up in place.
class Counter {
 public:
  Counter() { digits_[first_] = '0'; }
  std::string_view digits() const { return std::string_view(digits_ + first_, sizeof digits_ - first_); }
  void Next() {
    for (size_t at = sizeof digits_ - 1;; --at) {
      if (at < first_) {
        digits_[first_ = at] = '1';
        return;
      }
      if (digits_[at]++ != '9') return;
      digits_[at] = '0';
    }
  }

 private:
  char digits_[24];
  size_t first_ = sizeof digits_ - 1;
};

class Evaluator {
 public:
  Evaluator(const char* request_end, Brackets& before, PointFilter* filter)
      : end_(request_end), before_(before), filter_(filter), closed_(filter != nullptr && filter->Closed()) {}

  TriggerPoints result;

  // The value at p of the request, all of it present in the write; `before` is the same
  // place's value before the write, or nullptr. Returns just past the value, nullptr if the
  // text is broken.
  const char* Walk(const Scope& scope, const char* before, const char* p) {
    if (p >= end_) return nullptr;
    switch (*p) {
      case '{':
        return Object(scope, before, p);
      case '[':
        return Array(scope, before, p);
      case '"':
      case 'n':
        return ValueEnd(p, end_);  // strings and nulls are never pushed
      default:
        return Leaf(scope, before, p);
    }
  }

 private:
  // A patch merges objects, so only the members it names are present: the same walk as a
  // put's, since what the patch names holds the patch's values after the write. Its null
  // members (removed keys) are walked as nulls, and push nothing.
  const char* Object(const Scope& scope, const char* before, const char* p) {
    BeforeObject then(before_, before);
    const ConfiguredChildren children(scope, &names_);
    ++p;
    if (p < end_ && *p == '}') return p + 1;
    std::string decoded;
    for (;;) {
      KeyForm form;
      MemberAt member{};
      if (ReadMember(p, end_, &form, &member) == nullptr) return nullptr;
      // The key's string is decoded only where the configuration or the path needs it: once
      // the filter has closed and nothing is configured below, `before` is searched by key.
      std::string_view name;
      if (!form.escaped || !closed_ || scope.Configures()) name = KeyName(p, member.key_end, form.escaped, &decoded);
      const Scope inner = scope.Enter(children.Find(name));
      const char* next;
      if (inner.Idle()) {
        next = ValueEnd(member.value, end_);
      } else {
        const Mark mark = Here();
        if (!closed_) PushKey(name);
        next = Walk(inner, then.Find(std::string_view(p, member.key_end - p), form), member.value);
        Back(mark);
      }
      bool done = false;
      p = NextElement(next, end_, '}', &done);
      if (p == nullptr) return done ? next + 1 : nullptr;
    }
  }

  // Elements are leaves named by index, compared with the element at the same index before.
  // Apart where something is configured below: deep arrays are walked at every level, and the
  // children's lookup weighed on each level's frame where nothing is.
  const char* Array(const Scope& scope, const char* before, const char* p) {
    if (!scope.Configures()) return Elements(scope, before, p, [](std::string_view) { return nullptr; });
    const ConfiguredChildren children(scope, &names_);
    return Elements(scope, before, p, [&](std::string_view key) { return children.Find(key); });
  }

  // `child(index)`: the configuration of the element at `index`, nullptr for none.
  template <class Child>
  const char* Elements(const Scope& scope, const char* before, const char* p, const Child& child) {
    const char* then = before != nullptr && *before == '[' && before + 1 < before_.end() && before[1] != ']'
                           ? before + 1
                           : nullptr;
    ++p;
    if (p < end_ && *p == ']') return p + 1;
    Counter index;
    for (;; index.Next()) {
      const char* next;
      if (scope.config == nullptr && closed_) {
        next = Walk(scope, then, p);  // the same settings below, and no path to name
      } else {
        const std::string_view key = index.digits();
        const Scope inner = scope.Enter(child(key));
        if (inner.Idle()) {
          next = ValueEnd(p, end_);
        } else {
          const Mark mark = Here();
          if (!closed_) PushIndex(key);
          next = Walk(inner, then, p);
          Back(mark);
        }
      }
      if (then != nullptr) {
        bool done = false;
        then = NextElement(before_.ValueEnd(then), before_.end(), ']', &done);
      }
      bool done = false;
      p = NextElement(next, end_, ']', &done);
      if (p == nullptr) return done ? next + 1 : nullptr;
    }
  }

  const char* Leaf(const Scope& scope, const char* before, const char* p) {
    const char* end = ValueEnd(p, end_);
    if (end == nullptr || !scope.trigger) return end;
    const std::string_view token(p, end - p);
    const bool boolean = *p == 't' || *p == 'f';  // true or false: text this program wrote
    if (!boolean && !IsNumberStart(*p)) return end;
    if (*scope.trigger == TsdbTrigger::kOnChange && !Changed(before, token, boolean)) return end;
    if (closed_) {
      ++result.left_out;
      return end;
    }
    if (path_.size() + index_.size() > kMaxSeriesBytes) {
      ++result.too_long;  // a 32 KiB key under 1 000 array elements would be 32 MB of copies
      return end;
    }
    if (filter_ != nullptr) {
      const bool admitted = filter_->Admit(path_hash_, scope.tags);
      closed_ = filter_->Closed();
      if (!admitted) return end;
    }
    TsdbPoint point;
    point.json_path = path_;
    if (!index_.empty()) AppendSegment(index_, &point.json_path);
    point.value = boolean ? (token[0] == 't' ? 1 : 0) : NumberValue(token);
    if (scope.tags != nullptr) point.tags = *scope.tags;
    result.points.push_back(std::move(point));
    return end;
  }

  // Whether the leaf `now` differs from the value at `before`: absent, of another kind, or
  // another number. The same text is the same number; other texts are compared as numbers
  // (-0 equals 0, and 1.0 written by another program equals 1), except short integers, whose
  // texts differ exactly when their values do.
  bool Changed(const char* before, std::string_view now, bool boolean) const {
    if (before == nullptr) return true;
    if (boolean) return *before != now[0];
    if (!IsNumberStart(*before)) return true;
    const char* end = ValueEnd(before, before_.end());
    if (end == nullptr) return true;
    const std::string_view then(before, end - before);
    if (SameText(then, now)) return false;
    if (IsShortInteger(then) && IsShortInteger(now)) return true;
    return NumberValue(then) != NumberValue(now);
  }

  // Leaves are a few bytes long: a loop costs less than calling memcmp.
  static bool SameText(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] != b[i]) return false;
    }
    return true;
  }

  // At most 15 digits (exact in a double, each text its own value): 0, or digits not starting
  // with 0, with a sign unless 0 (-0 is 0).
  static bool IsShortInteger(std::string_view token) {
    if (token == "0") return true;
    if (!token.empty() && token[0] == '-') token.remove_prefix(1);
    if (token.empty() || token.size() > 15 || token[0] == '0') return false;
    return std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

  // The path grows by a key's segment, escaped.
  void PushKey(std::string_view name) {
    FlushIndex();
    const size_t start = path_.size() + !path_.empty();
    if (!path_.empty()) path_ += '.';
    AppendNameSegment(name, &path_);
    path_hash_ = PathHash(std::string_view(path_).substr(start), path_hash_);
  }

  // The path grows by an array index (which needs no escape; it is hashed, and written only
  // once something is below it or a point is made: most are leaves the filter refuses).
  void PushIndex(std::string_view digits) {
    FlushIndex();
    index_ = digits;
    path_hash_ = PathHash(digits, path_hash_);
  }

  void FlushIndex() {
    if (index_.empty()) return;
    AppendSegment(index_, &path_);
    index_ = {};
  }

  static void AppendSegment(std::string_view segment, std::string* path) {
    if (!path->empty()) *path += '.';
    path->append(segment);
  }

  // The path where a member or element is entered, to come back to once it is walked.
  struct Mark {
    size_t size;
    std::string_view index;
    uint64_t hash;
  };
  Mark Here() const { return {path_.size(), index_, path_hash_}; }
  void Back(Mark mark) {
    if (path_.size() != mark.size) path_.resize(mark.size);
    index_ = mark.index;
    path_hash_ = mark.hash;
  }

  const char* end_;
  Brackets& before_;
  PointFilter* filter_;
  bool closed_;
  ConfiguredChildren::Kept names_;  // of configured nodes with many children, once each
  std::string path_;                // the json_path, but for index_
  std::string_view index_;          // the last segment, an array index, when not written into path_ yet
  uint64_t path_hash_ = 0;          // of the json_path, segment by segment (PathHash)
};

bool AnyTrigger(const ConfigNode& node, bool on_change_only) {
  if (node.trigger && (!on_change_only || *node.trigger == TsdbTrigger::kOnChange)) return true;
  for (const auto& child : node.children) {
    if (AnyTrigger(child.second, on_change_only)) return true;
  }
  return false;
}

}  // namespace

bool HasTrigger(const ConfigNode& document) { return AnyTrigger(document, false); }

bool HasOnChangeTrigger(const ConfigNode& document) { return AnyTrigger(document, true); }

TriggerPoints EvaluateTriggers(const ConfigNode& document, std::string_view before, std::string_view request,
                               PointFilter* filter) {
  if (request.empty() || request[0] != '{' || !HasTrigger(document)) return {};
  if (!before.empty() && before[0] != '{') before = {};
  Scope root;
  root.config = &document;
  root.trigger = document.trigger;
  if (document.tags) root.tags = &*document.tags;
  Brackets before_text(before);
  Evaluator evaluator(request.data() + request.size(), before_text, filter);
  evaluator.Walk(root, before.empty() ? nullptr : before.data(), request.data());
  return std::move(evaluator.result);
}

std::vector<TsdbPoint> EvaluateTriggers(const ConfigNode& document, const cJSON* before, const cJSON* request,
                                        const cJSON* after) {
  if (!cJSON_IsObject(request) || !cJSON_IsObject(after)) return {};
  const std::string before_text = cJSON_IsObject(before) ? PrintJson(before) : std::string();
  return EvaluateTriggers(document, before_text, PrintJson(request)).points;
}

}  // namespace twins
