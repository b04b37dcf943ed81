#include "points.hpp"

#include <optional>
#include <string_view>
#include <unordered_map>

#include "series.hpp"

namespace twins {
namespace {

// The settings in force at one node of the data, and the configuration below it.
struct Scope {
  const ConfigNode* config = nullptr;  // nullptr once the data goes below every configured key
  std::optional<TsdbTrigger> trigger;
  const std::map<std::string, std::string>* tags = nullptr;

  Scope Enter(const std::string& key) const {
    Scope inner{nullptr, trigger, tags};
    if (config == nullptr) return inner;
    auto found = config->children.find(key);
    if (found == config->children.end()) return inner;
    inner.config = &found->second;
    if (found->second.trigger) inner.trigger = found->second.trigger;
    if (found->second.tags) inner.tags = &*found->second.tags;
    return inner;
  }
  // Nothing below can be pushed: no trigger here and no configuration deeper down.
  bool Idle() const { return !trigger && config == nullptr; }
};

// Finds an object's members by key; large objects get an index so that walking two
// documents side by side stays linear.
class Members {
 public:
  explicit Members(const cJSON* object) : object_(cJSON_IsObject(object) ? object : nullptr) {
    if (object_ == nullptr || cJSON_GetArraySize(object_) <= kIndexFrom) return;
    for (const cJSON* item = object_->child; item != nullptr; item = item->next) index_.emplace(item->string, item);
  }
  const cJSON* Find(const char* key) const {
    if (object_ == nullptr) return nullptr;
    if (index_.empty()) return cJSON_GetObjectItemCaseSensitive(object_, key);
    auto found = index_.find(key);
    return found == index_.end() ? nullptr : found->second;
  }

 private:
  static constexpr int kIndexFrom = 16;
  const cJSON* object_;
  std::unordered_map<std::string_view, const cJSON*> index_;
};

bool Changed(const cJSON* before, const cJSON* after) {
  if (before == nullptr) return true;
  if (cJSON_IsBool(after)) return !cJSON_IsBool(before) || cJSON_IsTrue(before) != cJSON_IsTrue(after);
  return !cJSON_IsNumber(before) || before->valuedouble != after->valuedouble;
}

class Evaluator {
 public:
  explicit Evaluator(const PointFilter& admit) : admit_(admit) {}

  std::vector<TsdbPoint> points;

  // `request` is an object of the request, `after` the same object after the write.
  void Requested(const Scope& scope, const cJSON* before, const cJSON* request, const cJSON* after) {
    const Members after_members(request == after ? nullptr : after);
    const Members before_members(before);
    for (const cJSON* item = request->child; item != nullptr; item = item->next) {
      if (cJSON_IsNull(item)) continue;  // a removed key
      const Scope inner = scope.Enter(item->string);
      if (inner.Idle()) continue;
      const cJSON* now = request == after ? item : after_members.Find(item->string);
      if (now == nullptr) continue;
      const size_t mark = Push(EscapeNameSegment(item->string));
      const cJSON* then = before_members.Find(item->string);
      if (cJSON_IsObject(item) && cJSON_IsObject(now)) {
        Requested(inner, then, item, now);  // a patch merges objects: only what it names is present
      } else {
        Present(inner, then, now);
      }
      path_.resize(mark);
    }
  }

 private:
  // Every leaf of `now` is present in the write.
  void Present(const Scope& scope, const cJSON* before, const cJSON* now) {
    if (cJSON_IsNumber(now) || cJSON_IsBool(now)) {
      if (!scope.trigger) return;
      if (*scope.trigger == TsdbTrigger::kOnChange && !Changed(before, now)) return;
      if (admit_ && !admit_(path_, scope.tags)) return;
      TsdbPoint point;
      point.json_path = path_;
      point.value = cJSON_IsNumber(now) ? now->valuedouble : cJSON_IsTrue(now) ? 1 : 0;
      if (scope.tags != nullptr) point.tags = *scope.tags;
      points.push_back(std::move(point));
    } else if (cJSON_IsArray(now)) {
      const cJSON* then = cJSON_IsArray(before) ? before->child : nullptr;
      int index = 0;
      for (const cJSON* item = now->child; item != nullptr; item = item->next, ++index) {
        const std::string key = std::to_string(index);
        const Scope inner = scope.Enter(key);
        if (!inner.Idle()) {
          const size_t mark = Push(key);
          Present(inner, then, item);
          path_.resize(mark);
        }
        if (then != nullptr) then = then->next;
      }
    } else if (cJSON_IsObject(now)) {
      const Members before_members(before);
      for (const cJSON* item = now->child; item != nullptr; item = item->next) {
        const Scope inner = scope.Enter(item->string);
        if (inner.Idle()) continue;
        const size_t mark = Push(EscapeNameSegment(item->string));
        Present(inner, before_members.Find(item->string), item);
        path_.resize(mark);
      }
    }
  }

  size_t Push(const std::string& segment) {
    const size_t mark = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += segment;
    return mark;
  }

  const PointFilter& admit_;
  std::string path_;
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

std::vector<TsdbPoint> EvaluateTriggers(const ConfigNode& document, const cJSON* before, const cJSON* request,
                                        const cJSON* after, const PointFilter& admit) {
  if (!cJSON_IsObject(request) || !cJSON_IsObject(after) || !HasTrigger(document)) return {};
  Scope root;
  root.config = &document;
  root.trigger = document.trigger;
  if (document.tags) root.tags = &*document.tags;
  Evaluator evaluator(admit);
  evaluator.Requested(root, cJSON_IsObject(before) ? before : nullptr, request, after);
  return std::move(evaluator.points);
}

}  // namespace twins
