// JSON merge patch (RFC 7396), the Cloud Twins patch format.
#pragma once

#include <cjson/cJSON.h>

namespace twins {

// Merges the object `patch` into the object `target`, in place, keeping key order.
// Keys absent from the patch are kept, null removes a key, objects merge recursively,
// everything else (strings, numbers, booleans, arrays) replaces. Returns false only when
// memory runs out (target is then partly merged and should be dropped).
bool MergePatch(cJSON* target, const cJSON* patch);

}  // namespace twins
