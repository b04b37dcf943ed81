// The JSON of one change-log entry, as the REST change stream (SSE `data:`) and the MQTT
// event feed both send it:
//   {"seq":S,"time":"2026-11-27T18:00:00.123Z","twin_id":"…","document_name":"…",
//    "operation":"put|patch|delete","source":"mqtt|rest","version":V,"data":{…}}
// `data` (the whole document after the change) is absent for a delete.
#pragma once

#include <cstdint>
#include <string>

#include "store/document_store.hpp"

namespace twins {

std::string ChangeJson(const Change& change);

// RFC 3339 UTC with milliseconds: 2026-11-27T18:00:00.123Z.
std::string Rfc3339Ms(int64_t unix_ms);

}  // namespace twins
