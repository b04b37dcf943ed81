#include "engine/twin_config.hpp"

#include <string_view>

#include "engine/names.hpp"

namespace twins {
namespace {

Status Invalid(const std::string& path, const std::string& why) {
  return Status::InvalidArgument("data", path + ": " + why);
}

Status ParseTags(const cJSON* json, const std::string& path, ConfigNode* node) {
  if (!cJSON_IsObject(json)) return Invalid(path, "_tags must be an object of string values");
  std::map<std::string, std::string> tags;
  for (const cJSON* tag = json->child; tag != nullptr; tag = tag->next) {
    if (!cJSON_IsString(tag)) return Invalid(path + "." + tag->string, "tag values must be strings");
    if (tag->string[0] == '\0') return Invalid(path, "tag names cannot be empty");
    tags[tag->string] = tag->valuestring;
  }
  node->tags = std::move(tags);
  return Status::Ok();
}

Status ParseNode(const cJSON* json, const std::string& path, ConfigNode* node) {
  if (!cJSON_IsObject(json)) return Invalid(path, "must be an object");
  for (const cJSON* item = json->child; item != nullptr; item = item->next) {
    const std::string key = item->string;
    const std::string item_path = path + "." + key;
    if (cJSON_IsNull(item)) continue;
    Status s = Status::Ok();
    if (key == "_tags") {
      s = ParseTags(item, item_path, node);
    } else if (key == "_tsdb_trigger") {
      std::string_view value = cJSON_IsString(item) ? item->valuestring : "";
      if (value == "on-update") {
        node->trigger = TsdbTrigger::kOnUpdate;
      } else if (value == "on-change") {
        node->trigger = TsdbTrigger::kOnChange;
      } else {
        s = Invalid(item_path, "must be \"on-update\" or \"on-change\"");
      }
    } else if (!key.empty() && key[0] == '_') {
      s = Invalid(item_path, "unknown configuration key (known: _tags, _tsdb_trigger)");
    } else {
      s = ParseNode(item, item_path, &node->children[key]);
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

Result<TwinConfig> ParseTwinConfig(const cJSON* data) {
  TwinConfig config;
  if (!cJSON_IsObject(data)) return Invalid("data", "must be an object");
  for (const cJSON* item = data->child; item != nullptr; item = item->next) {
    if (std::string_view(item->string) != "documents") {
      return Invalid(std::string("data.") + item->string, "unknown key, _config data holds only \"documents\"");
    }
    if (cJSON_IsNull(item)) continue;
    if (!cJSON_IsObject(item)) return Invalid("data.documents", "must be an object");
    for (const cJSON* doc = item->child; doc != nullptr; doc = doc->next) {
      const std::string path = std::string("data.documents.") + doc->string;
      Status name = ValidateDocumentName(doc->string);
      if (!name.ok()) return Invalid(path, name.message());
      if (std::string_view(doc->string) == kConfigDocument) return Invalid(path, "_config cannot configure itself");
      if (cJSON_IsNull(doc)) continue;
      Status s = ParseNode(doc, path, &config.documents[doc->string]);
      if (!s.ok()) return s;
    }
  }
  return config;
}

}  // namespace twins
