// JSON merge patch (RFC 7396), the Cloud Twins patch format, applied to stored text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace twins {

// Merges the object text `patch` (a request's data as ParseWriteRequest stores it: checked,
// compact, no duplicate keys, no null inside arrays) into `target`, the compact JSON text of
// a stored object, and appends the merged object's compact text to `out`. Keys absent from
// the patch are kept, null removes a key, objects merge recursively, everything else
// (strings, numbers, booleans, arrays) replaces; kept keys keep their place and new keys
// follow in patch order.
//
// Why text: a patch usually changes a few leaves of a much larger document. Copying the
// untouched members byte for byte costs one pass over the stored text, where parsing it into
// a tree and printing it back cost most of a patch; members after the last one the patch
// changes are not even read one by one, only checked for nesting and copied in one piece.
// Fails on a target that is not an object's JSON text (a corrupt record): always where it is
// cut short, not always where its syntax is wrong past the last change. Taking the patch as
// text too spares parsing it.
//
// Bounded work: O(size of target + size of patch) whatever their shape (many keys, escaped
// keys); and once the merged text passes `max_bytes` the merge stops and fails with an
// invalid argument naming the limit ("document would be larger than the limit of N bytes"),
// `out` then holding a part of it.
Status MergePatch(std::string_view target, std::string_view patch, std::string* out, size_t max_bytes = SIZE_MAX);

}  // namespace twins
