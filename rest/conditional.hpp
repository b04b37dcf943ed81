// Entity tags: a document's ETag is its version in quotes ("3"), so If-Match turns into the
// engine's version check and If-None-Match into a version comparison.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.hpp"

namespace twins {

std::string ETag(uint64_t version);

// A version as ETags and ?version= write it: decimal, 1 to 2^53, no leading zero.
std::optional<uint64_t> ParseVersionText(std::string_view text);

struct IfMatch {
  bool any = false;  // "*": any existing document
  std::vector<uint64_t> versions;

  bool Matches(uint64_t version) const;
  // What the request expected, for the 412 message: "*", "3" or "3 or 5".
  std::string Describe() const;
};

// Parses a non-empty If-Match value. Weak tags, tags that are not one of our versions and
// version 0 (no document has it) are invalid arguments naming the header.
Result<IfMatch> ParseIfMatch(std::string_view header);

// True when If-None-Match names `version` (weak comparison) or is "*". A malformed
// value matches nothing, so the full document is sent.
bool IfNoneMatchHits(std::string_view header, uint64_t version);

}  // namespace twins
