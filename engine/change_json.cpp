#include "engine/change_json.hpp"

#include <cstdio>
#include <ctime>

#include "engine/json.hpp"

namespace twins {

std::string Rfc3339Ms(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string out(text, length);
  char millis[8];
  std::snprintf(millis, sizeof millis, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return out + millis;
}

std::string ChangeJson(const Change& change) {
  const char* operation = change.kind == ChangeKind::kPut     ? "put"
                          : change.kind == ChangeKind::kPatch ? "patch"
                                                              : "delete";
  std::string out;
  out.reserve(change.data.size() + change.twin.size() + change.doc.size() + 160);
  out += "{\"seq\":" + std::to_string(change.seq);
  out += ",\"time\":\"" + Rfc3339Ms(change.time_ms) + '"';
  out += ",\"twin_id\":" + QuoteJson(change.twin);
  out += ",\"document_name\":" + QuoteJson(change.doc);
  out += ",\"operation\":\"";
  out += operation;
  out += "\",\"source\":" + QuoteJson(change.source);
  out += ",\"version\":" + std::to_string(change.version);
  if (change.kind != ChangeKind::kDelete) {
    out += ",\"data\":";
    out += change.data;
  }
  out += '}';
  return out;
}

}  // namespace twins
