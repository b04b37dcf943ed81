#include "merge.hpp"

namespace twins {

bool MergePatch(cJSON* target, const cJSON* patch) {
  for (const cJSON* change = patch->child; change != nullptr; change = change->next) {
    cJSON* existing = cJSON_GetObjectItemCaseSensitive(target, change->string);
    if (cJSON_IsNull(change)) {
      if (existing != nullptr) cJSON_Delete(cJSON_DetachItemViaPointer(target, existing));
      continue;
    }
    if (cJSON_IsObject(change) && cJSON_IsObject(existing)) {
      if (!MergePatch(existing, change)) return false;
      continue;
    }
    // An object patch over a missing or non-object value merges into an empty object,
    // which drops the nulls it carries.
    cJSON* replacement = cJSON_IsObject(change) ? cJSON_CreateObject() : cJSON_Duplicate(change, true);
    if (replacement == nullptr || (cJSON_IsObject(change) && !MergePatch(replacement, change))) {
      cJSON_Delete(replacement);
      return false;
    }
    bool linked = existing != nullptr ? cJSON_ReplaceItemInObjectCaseSensitive(target, change->string, replacement)
                                      : cJSON_AddItemToObject(target, change->string, replacement);
    if (!linked) {
      cJSON_Delete(replacement);
      return false;
    }
  }
  return true;
}

}  // namespace twins
