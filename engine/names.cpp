#include "engine/names.hpp"

#include <string>

#include "engine/json.hpp"

namespace twins {

Status ValidateTwinId(std::string_view twin_id) {
  if (twin_id.empty() || twin_id.size() > kMaxNameBytes) {
    return Status::InvalidArgument("twin_id", "twin id must be 1 to 128 bytes long");
  }
  if (twin_id.find_first_of(std::string_view("/+#\0", 4)) != std::string_view::npos) {
    return Status::InvalidArgument("twin_id", "twin id cannot contain '/', '+', '#' or NUL");
  }
  if (!IsValidUtf8(twin_id)) return Status::InvalidArgument("twin_id", "twin id must be valid UTF-8");
  return Status::Ok();
}

Status ValidateDocumentName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) {
    return Status::InvalidArgument("document_name", "document name must be 1 to 128 characters long");
  }
  for (char c : name) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
                   c == '.' || c == '~';
    if (!allowed) {
      return Status::InvalidArgument("document_name", "document name may only contain [-_.~0-9a-zA-Z]");
    }
  }
  if (name[0] == '_' && name != kConfigDocument) {
    return Status::InvalidArgument("document_name",
                                   "document names starting with '_' are reserved (only _config exists)");
  }
  return Status::Ok();
}

}  // namespace twins
