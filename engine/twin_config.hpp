// The `_config` document: which keys of which documents carry tags and time-series triggers.
//
//   {"documents": {"<doc>": {"_tags": {"k": "v"}, "_tsdb_trigger": "on-change",
//                            "<key>": {"_tsdb_trigger": "on-update", ...}}}}
//
// A setting applies to its key and the whole subtree below; a deeper setting of the same
// name replaces it for that subtree; null means "not set".
#pragma once

#include <cjson/cJSON.h>

#include <map>
#include <optional>
#include <string>

#include "common/status.hpp"

namespace twins {

enum class TsdbTrigger { kOnUpdate, kOnChange };

struct ConfigNode {
  std::optional<std::map<std::string, std::string>> tags;
  std::optional<TsdbTrigger> trigger;
  std::map<std::string, ConfigNode, std::less<>> children;  // found by string_view too
};

struct TwinConfig {
  std::map<std::string, ConfigNode> documents;  // by document name
};

// Validates `_config` data and returns it parsed. Errors name the JSON path.
Result<TwinConfig> ParseTwinConfig(const cJSON* data);

}  // namespace twins
