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

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/twin_config.hpp"

namespace twins {

struct TsdbPoint {
  // The leaf's keys and array indices, each escaped by AppendNameSegment (series.hpp) and
  // joined by '.': "motor.rpm", "arr.0". Legal as a Graphite name part and tag value.
  std::string json_path;
  double value = 0;
  std::map<std::string, std::string> tags;  // the effective `_tags`, as configured
};

// True when some node of the document's configuration sets `_tsdb_trigger`.
bool HasTrigger(const ConfigNode& document);

// True when some node sets `_tsdb_trigger` to on-change (the data before the write matters).
bool HasOnChangeTrigger(const ConfigNode& document);

// A hash of a json_path, made segment by segment as the path is: `segment` (escaped, without
// the '.' that separates it from the one before: a path splits into them one way only) is
// hashed 8 bytes at a time into `hash`, the hash of the segments before it (0 for none).
inline uint64_t PathHash(std::string_view segment, uint64_t hash = 0) {
  constexpr uint64_t kOdd = 0x9E3779B97F4A7C15ull;
  uint64_t word = segment.size();
  int shift = 8;
  for (const char c : segment) {
    if (shift == 64) {
      hash = (hash ^ word) * kOdd;
      hash ^= hash >> 29;
      word = 0;
      shift = 0;
    }
    word |= uint64_t{static_cast<unsigned char>(c)} << shift;
    shift += 8;
  }
  hash = (hash ^ word) * kOdd;
  return hash ^ (hash >> 29);
}

// Which points a write keeps, for the series limit (TsdbObserver). Asked before each point
// is made, with its json_path's hash and effective tags (nullptr for none); a point it refuses is
// left out. Once Closed(), it would refuse every point it has not been asked about in this
// evaluation, so it is asked no more: the points are only counted (TriggerPoints::left_out).
class PointFilter {
 public:
  // `path_hash`: the json_path's PathHash, made as the path is, so that a long path is not
  // hashed again for each leaf below it (nor written out for a leaf refused).
  virtual bool Admit(uint64_t path_hash, const std::map<std::string, std::string>* tags) = 0;
  virtual bool Closed() const = 0;

 protected:
  ~PointFilter() = default;
};

struct TriggerPoints {
  std::vector<TsdbPoint> points;  // in document order
  uint64_t left_out = 0;          // points the filter was not asked about, once it had closed
  // Points not made: their json_path alone is longer than a series name may be
  // (kMaxSeriesBytes), so no sender could ever deliver them; not copied, not asked about.
  uint64_t too_long = 0;
};

// The points a successful put or patch produces, from the stored (compact) text of the data
// before the write (empty when the document was created, or when no on-change trigger is
// configured) and of the request's data (the whole new data for a put, the patch for a
// patch). What the write made of the document is implied: a put's data is the document, and
// everything a patch reaches holds the patch's own value (objects merge, the rest replaces).
//
// Bounded work: one pass over the request's text, the objects it does not reach skipped
// whole; `before` is read only where the request reaches and an on-change trigger may apply,
// its members found in order or through a hash index, values skipped through an index of its
// brackets (built in one pass when it is large), so the cost stays linear whatever the shape
// (many keys, long arrays, deep nesting). Once the filter closes, points are counted without
// making their json_path or asking the filter.
TriggerPoints EvaluateTriggers(const ConfigNode& document, std::string_view before, std::string_view request,
                               PointFilter* filter = nullptr);

// The same on parsed trees (printed to their stored text first), for callers that hold them;
// `after` is implied by the request and not read.
std::vector<TsdbPoint> EvaluateTriggers(const ConfigNode& document, const cJSON* before, const cJSON* request,
                                        const cJSON* after);

}  // namespace twins
