// Which numeric leaves of a written document go to the time-series database, as decided
// by the document's `_config` entry (`_tsdb_trigger`, `_tags`). A pure function: no I/O.
//
// Leaves: numbers, and booleans as 1/0. Inside arrays every element is addressed by its
// index, so numbers in arrays (and in objects inside arrays) are leaves too. Strings, nulls
// and removed keys never produce a point.
//
// Settings: the effective `_tsdb_trigger` and `_tags` of a leaf are those of the nearest
// ancestor (the document itself included) that sets them; a deeper setting replaces, never
// merges with, the one above it. Configuration keys address array elements by index ("0").
//
// "Present in the write" (on-update): a leaf is present when the request's data reaches it:
// for a put, every leaf of the new data; for a patch, every leaf under a non-null key of the
// patch. A patch replaces arrays whole, so every element of an array named by the patch is
// present. Leaves the patch does not name, and keys it removes, are not.
// "Changed" (on-change): present, and before the write it was absent or held a different
// JSON value (a different number, a number where a boolean was, and so on).
#pragma once

#include <cjson/cJSON.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "twin_config.hpp"

namespace twins {

struct TsdbPoint {
  // The leaf's keys and array indices, each escaped by EscapePathSegment (series.hpp) and
  // joined by '.': "motor.rpm", "arr.0". Legal as a Graphite name part and tag value.
  std::string json_path;
  double value = 0;
  std::map<std::string, std::string> tags;  // the effective `_tags`, as configured
};

// True when some node of the document's configuration sets `_tsdb_trigger`.
bool HasTrigger(const ConfigNode& document);

// True when some node sets `_tsdb_trigger` to on-change (the data before the write matters).
bool HasOnChangeTrigger(const ConfigNode& document);

// The points a successful put or patch produces, in document order. `before` is the data
// before the write (nullptr when the document was created, or when no on-change trigger is
// configured), `request` the request's data (the whole new data for a put, the patch for a
// patch), `after` the data after the write.
//
// `admit`, when given, is asked before each point is made (with its json_path and effective
// tags, nullptr for none); a point it refuses is left out. Work is linear in the size of the
// three trees whatever their shape (large objects are indexed).
using PointFilter = std::function<bool(std::string_view json_path, const std::map<std::string, std::string>* tags)>;
std::vector<TsdbPoint> EvaluateTriggers(const ConfigNode& document, const cJSON* before, const cJSON* request,
                                        const cJSON* after, const PointFilter& admit = nullptr);

}  // namespace twins
