// The RocksDB backend's records (keys and values), shared by the store (rocksdb_store.cpp) and
// its read-only snapshots (rocksdb_snapshot.cpp). Private to store/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "store/document_store.hpp"

namespace twins::rocksdb_layout {

// Key layout, schema 2. Default column family (hashed by twin, values updated in place):
//   "d" twin_id NUL doc_name -> 8-byte little-endian version, 8-byte modified ms, data JSON.
//   "w" twin NUL doc NUL watcher -> the watch's value
//   "!seq"                       -> the newest seq (8 bytes BE) written, with every batch that logs
//                                   changes (and by StartChangeLogAfter, for imports): seq goes on
//                                   from it even when retention dropped every log entry
// Twin ids never contain NUL, so one twin's documents form one contiguous key range.
// Column family "changes" (ordered; FIFO compaction: retention drops its oldest files whole,
// with no deletions to write or compact):
//   "c" seq (8 bytes big-endian)            -> a change-log entry (EncodeChange)
//   "h" twin NUL doc NUL version (8 bytes BE) -> seq of the entry that made that version; written
//                                              in the entry's batch, so it goes with the entry
// Beside RocksDB's files, kReservedSeqFile holds a seq (8 bytes BE) that no seq written exceeds:
// without sync_writes, it is raised (and fsynced) before a seq above it is written, lowered to
// the newest seq written at a clean close. The next open goes on after it: a power loss may
// have taken back changes up to it that readers had seen.
// Schema 1 (no modified time, no change log) is upgraded in place at open, in one batch.
inline constexpr char kSchemaKey[] = "!schema";
inline constexpr char kSchemaVersion[] = "2";
inline constexpr char kChangesFamily[] = "changes";
inline constexpr char kNewestSeqKey[] = "!seq";
inline constexpr char kReservedSeqFile[] = "TWINS-SEQ-RESERVED";

inline void AppendBigEndian(uint64_t value, std::string* out) {
  for (int i = 7; i >= 0; --i) *out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

inline uint64_t ReadBigEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(bytes[i]);
  return value;
}

inline void AppendLittleEndian(uint64_t value, std::string* out) {
  for (int i = 0; i < 8; ++i) *out += static_cast<char>((value >> (8 * i)) & 0xFF);
}

inline uint64_t ReadLittleEndian(const char* bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  return value;
}

inline std::string ChangeKey(uint64_t seq) {
  std::string key = "c";
  AppendBigEndian(seq, &key);
  return key;
}

inline std::string VersionKey(std::string_view twin, std::string_view doc, uint64_t version) {
  std::string key = "h";
  key.append(twin);
  key += '\0';
  key.append(doc);
  key += '\0';
  AppendBigEndian(version, &key);
  return key;
}

inline std::string WatchKey(std::string_view twin, std::string_view doc, std::string_view watcher) {
  std::string key = "w";
  key.append(twin);
  key += '\0';
  key.append(doc);
  key += '\0';
  key.append(watcher);
  return key;
}

// A change-log entry: time (8, LE), kind (1), version (8, LE), four lengths (2 bytes each,
// LE: twin, doc, source, origin), those strings, then the data to the end.
inline std::string EncodeChange(const Change& change) {
  std::string out;
  out.reserve(33 + change.twin.size() + change.doc.size() + change.source.size() + change.origin.size() +
              change.data.size());
  AppendLittleEndian(static_cast<uint64_t>(change.time_ms), &out);
  out += static_cast<char>(change.kind);
  AppendLittleEndian(change.version, &out);
  for (const std::string* part : {&change.twin, &change.doc, &change.source, &change.origin}) {
    const size_t size = std::min<size_t>(part->size(), 0xFFFF);
    out += static_cast<char>(size & 0xFF);
    out += static_cast<char>(size >> 8);
  }
  for (const std::string* part : {&change.twin, &change.doc, &change.source, &change.origin}) {
    out.append(*part, 0, 0xFFFF);
  }
  out += change.data;
  return out;
}

inline bool DecodeChange(uint64_t seq, std::string_view value, Change* out) {
  if (value.size() < 25) return false;
  out->seq = seq;
  out->time_ms = static_cast<int64_t>(ReadLittleEndian(value.data()));
  out->kind = static_cast<ChangeKind>(value[8]);
  out->version = ReadLittleEndian(value.data() + 9);
  size_t sizes[4];
  size_t at = 17;
  for (size_t& size : sizes) {
    size = static_cast<unsigned char>(value[at]) |
           (static_cast<size_t>(static_cast<unsigned char>(value[at + 1])) << 8);
    at += 2;
  }
  std::string* parts[] = {&out->twin, &out->doc, &out->source, &out->origin};
  for (int i = 0; i < 4; ++i) {
    if (value.size() - at < sizes[i]) return false;
    parts[i]->assign(value.substr(at, sizes[i]));
    at += sizes[i];
  }
  out->data.assign(value.substr(at));
  return true;
}

inline void AppendTwinPrefix(std::string_view twin, std::string* key) {
  *key += 'd';
  key->append(twin);
  *key += '\0';
}

inline std::string TwinPrefix(std::string_view twin) {
  std::string key;
  key.reserve(twin.size() + 2);
  AppendTwinPrefix(twin, &key);
  return key;
}

// The key of a document, written into *key so that a batch reuses one buffer for all of them.
inline void SetDocumentKey(std::string_view twin, std::string_view doc, std::string* key) {
  key->clear();
  AppendTwinPrefix(twin, key);
  key->append(doc);
}

inline std::string DocumentKey(std::string_view twin, std::string_view doc) {
  std::string key;
  SetDocumentKey(twin, doc, &key);
  return key;
}

// A schema 2 document value; false when it is too short to be one.
inline bool DecodeDocument(const std::string& value, StoredDocument* out) {
  if (value.size() < 16) return false;
  out->version = ReadLittleEndian(value.data());
  out->modified_ms = static_cast<int64_t>(ReadLittleEndian(value.data() + 8));
  out->data.assign(value, 16, std::string::npos);
  return true;
}

// A watch key without its "w": twin, doc and watcher; false when it is not one.
inline bool DecodeWatchKey(std::string_view key, WatchRecord* out) {
  const size_t first = key.find('\0');
  const size_t second = first == std::string_view::npos ? first : key.find('\0', first + 1);
  if (second == std::string_view::npos) return false;
  out->twin.assign(key.substr(0, first));
  out->doc.assign(key.substr(first + 1, second - first - 1));
  out->watcher.assign(key.substr(second + 1));
  return true;
}

}  // namespace twins::rocksdb_layout
