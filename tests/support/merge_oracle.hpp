// RFC 7396's MergePatch pseudo-code over cJSON trees: the oracle the text merge
// (engine/merge.hpp) is checked against, by tests/merge_test.cpp and fuzz/merge_fuzzer.cpp.
#pragma once

#include "engine/json.hpp"

namespace twins::test {

// The merge of `patch` into `target`, as a new tree; neither argument is changed.
inline Json ReferenceMerge(const cJSON* target, const cJSON* patch) {
  if (!cJSON_IsObject(patch)) return Json(cJSON_Duplicate(patch, true));
  Json result(cJSON_IsObject(target) ? cJSON_Duplicate(target, true) : cJSON_CreateObject());
  for (const cJSON* change = patch->child; change != nullptr; change = change->next) {
    cJSON* existing = cJSON_GetObjectItemCaseSensitive(result.get(), change->string);
    if (cJSON_IsNull(change)) {
      if (existing != nullptr) cJSON_DeleteItemFromObjectCaseSensitive(result.get(), change->string);
      continue;
    }
    cJSON* merged = ReferenceMerge(existing, change).release();
    if (existing != nullptr) {
      cJSON_ReplaceItemInObjectCaseSensitive(result.get(), change->string, merged);
    } else {
      cJSON_AddItemToObject(result.get(), change->string, merged);
    }
  }
  return result;
}

}  // namespace twins::test
