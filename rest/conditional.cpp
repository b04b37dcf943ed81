#include "rest/conditional.hpp"

#include <algorithm>
#include <optional>

#include "engine/request_body.hpp"
#include "rest/path.hpp"

namespace twins {
namespace {

struct EntityTag {
  bool star = false;
  bool weak = false;
  std::string_view opaque;  // between the quotes
};

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// RFC 9110 section 8.8.3: "*" alone, or a comma-separated list of [W/]"opaque".
std::optional<std::vector<EntityTag>> ParseTags(std::string_view header) {
  std::vector<EntityTag> tags;
  header = TrimSpaces(header);
  if (header == "*") return std::vector<EntityTag>{EntityTag{true, false, {}}};
  while (true) {
    size_t comma = header.find(',');
    std::string_view item = TrimSpaces(header.substr(0, comma));
    if (!item.empty()) {
      EntityTag tag;
      if (item.size() >= 2 && item[0] == 'W' && item[1] == '/') {
        tag.weak = true;
        item.remove_prefix(2);
      }
      if (item.size() < 2 || item.front() != '"' || item.back() != '"') return std::nullopt;
      tag.opaque = item.substr(1, item.size() - 2);
      if (tag.opaque.find('"') != std::string_view::npos) return std::nullopt;
      tags.push_back(tag);
    }
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  if (tags.empty()) return std::nullopt;
  return tags;
}

}  // namespace

// Our opaque tags are decimal versions from 1 to 2^53 without leading zeros.
std::optional<uint64_t> ParseVersionText(std::string_view text) {
  if (text.empty() || text[0] == '0') return std::nullopt;
  return ParseWholeNumber(text, kMaxVersion);
}

std::string ETag(uint64_t version) { return '"' + std::to_string(version) + '"'; }

bool IfMatch::Matches(uint64_t version) const {
  return any || std::find(versions.begin(), versions.end(), version) != versions.end();
}

std::string IfMatch::Describe() const {
  if (any) return "*";
  std::string out;
  for (uint64_t version : versions) {
    if (!out.empty()) out += " or ";
    out += std::to_string(version);
  }
  return out;
}

Result<IfMatch> ParseIfMatch(std::string_view header) {
  auto tags = ParseTags(header);
  if (!tags) {
    return Status::InvalidArgument("If-Match", "If-Match must be \"*\" or a list of quoted ETags such as \"3\"");
  }
  IfMatch match;
  for (const EntityTag& tag : *tags) {
    if (tag.star) {
      match.any = true;
      continue;
    }
    std::optional<uint64_t> version = tag.weak ? std::nullopt : ParseVersionText(tag.opaque);
    if (!version) {
      return Status::InvalidArgument("If-Match",
                                     "If-Match takes the strong ETags of this API, document versions "
                                     "in quotes such as \"3\"");
    }
    match.versions.push_back(*version);
  }
  return match;
}

bool IfNoneMatchHits(std::string_view header, uint64_t version) {
  auto tags = ParseTags(header);
  if (!tags) return false;
  const std::string wanted = std::to_string(version);
  for (const EntityTag& tag : *tags) {
    if (tag.star || tag.opaque == wanted) return true;
  }
  return false;
}

}  // namespace twins
