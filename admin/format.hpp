// The export format of mosquitto-twins-admin, version 1: JSON lines, one object per line.
//   {"type":"header","format":1,"schema":2,"seq":42}
//   {"type":"document","twin_id":"t","document_name":"d","version":3,"modified_ms":1764266400123,"data":{…}}
//   {"type":"watch","twin_id":"t","document_name":"d","watcher":"client-1","value":"…"}
//   {"type":"end","documents":1,"watches":1}
// The header comes first: `schema` is the source database's, `seq` its change log's newest
// seq (an import goes on after it). Documents follow by twin id and name, then watches, then
// the end line with the counts, without which an import refuses the file as truncated.
// `data` is the stored text (compact JSON); `modified_ms` is Unix time in ms, 0 when unknown.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {

inline constexpr int kFormatVersion = 1;

std::string HeaderLine(int schema, uint64_t seq);
// Fails when the document's data is not a JSON object or a name is not valid UTF-8.
Result<std::string> DocumentLine(const SnapshotDocument& document);
// Fails when a part of the watch is not valid UTF-8.
Result<std::string> WatchLine(const WatchRecord& watch);
std::string EndLine(uint64_t documents, uint64_t watches);

struct Line {
  enum class Type { kHeader, kDocument, kWatch, kEnd };
  Type type = Type::kHeader;
  int schema = 0;             // header
  uint64_t seq = 0;           // header
  SnapshotDocument document;  // document
  WatchRecord watch;          // watch
  uint64_t documents = 0;     // end
  uint64_t watches = 0;       // end
};

// One line (without its newline), checked: JSON, the fields of its type and nothing else,
// names by the twin rules (engine/names.hpp), data as the engine would store it.
Result<Line> ParseLine(std::string_view text);

// Ok when `data` is one JSON object, in the form the engine stores.
Status CheckData(std::string_view data);

}  // namespace twins::admin
