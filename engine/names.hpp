// Naming rules shared by every entry point (MQTT topics, REST paths).
#pragma once

#include <string_view>

#include "common/status.hpp"

namespace twins {

inline constexpr std::string_view kConfigDocument = "_config";
inline constexpr size_t kMaxNameBytes = 128;

// 1-128 bytes of UTF-8 without '/', '+', '#' or NUL (they cannot stand in an MQTT topic level).
Status ValidateTwinId(std::string_view twin_id);

// 1-128 characters of [-_.~0-9a-zA-Z]; names starting with '_' are reserved, except _config.
Status ValidateDocumentName(std::string_view name);

}  // namespace twins
