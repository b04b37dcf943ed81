#include <iostream>
#include <map>
#include <string>
#include <utility>

#include "admin/commands.hpp"
#include "admin/format.hpp"
#include "engine/names.hpp"
#include "store/store_snapshot.hpp"

namespace twins::admin {
namespace {

using DocumentKey = std::pair<std::string, std::string>;

// Problems found, each said once on stderr; past kShown only counted.
class Problems {
 public:
  void Add(const std::string& message) {
    if (++count_ <= kShown) std::cerr << "problem: " << message << "\n";
  }
  uint64_t count() const { return count_; }

 private:
  static constexpr uint64_t kShown = 100;
  uint64_t count_ = 0;
};

std::string Name(const std::string& twin, const std::string& doc) { return twin + "/" + doc; }

// The latest retained change-log entry of a document.
struct Latest {
  uint64_t seq = 0;
  ChangeKind kind = ChangeKind::kPut;
  uint64_t version = 0;
};

}  // namespace

int Check(const Target& target) {
  auto snapshot = OpenSnapshot(target);
  if (!snapshot.ok()) return Fail("check: " + snapshot.status().message());
  const StoreSnapshot& store = **snapshot;
  Problems problems;
  const ChangeBounds bounds = store.changes();

  std::map<DocumentKey, uint64_t> versions;
  uint64_t twins = 0;
  std::string last_twin;
  Status s = store.Documents([&](SnapshotDocument& document) {
    const std::string name = Name(document.twin, document.doc);
    if (!ValidateTwinId(document.twin).ok() || !ValidateDocumentName(document.doc).ok()) {
      problems.Add("document " + name + ": invalid twin id or document name");
    }
    if (document.document.version == 0) problems.Add("document " + name + ": version 0");
    Status data = CheckData(document.document.data);
    if (!data.ok()) problems.Add("document " + name + ": " + data.message());
    if (twins == 0 || document.twin != last_twin) {
      ++twins;
      last_twin = document.twin;
    }
    versions.emplace(DocumentKey(std::move(document.twin), std::move(document.doc)), document.document.version);
    return Status::Ok();
  });
  if (!s.ok()) problems.Add("documents: " + s.message());

  std::map<DocumentKey, Latest> latest;
  std::map<uint64_t, DocumentKey> made;  // seq of each put or patch -> its document, for the index
  std::map<uint64_t, uint64_t> made_version;
  uint64_t entries = 0, previous = 0;
  s = store.ChangeLog([&](Change& change) {
    ++entries;
    if (change.seq <= previous) problems.Add("change " + std::to_string(change.seq) + ": out of order");
    previous = change.seq;
    if (change.kind != ChangeKind::kPut && change.kind != ChangeKind::kPatch && change.kind != ChangeKind::kDelete) {
      problems.Add("change " + std::to_string(change.seq) + ": unknown kind " +
                   std::to_string(static_cast<int>(change.kind)));
    }
    if (change.kind != ChangeKind::kDelete) {
      Status data = CheckData(change.data);
      if (!data.ok()) problems.Add("change " + std::to_string(change.seq) + ": " + data.message());
      made_version[change.seq] = change.version;
      made[change.seq] = {change.twin, change.doc};
    }
    latest[{change.twin, change.doc}] = {change.seq, change.kind, change.version};
    return Status::Ok();
  });
  if (!s.ok()) problems.Add("change log: " + s.message());

  for (const auto& [key, entry] : latest) {
    const std::string name = Name(key.first, key.second);
    const std::string seq = std::to_string(entry.seq);
    const auto document = versions.find(key);
    if (entry.kind == ChangeKind::kDelete) {
      if (document != versions.end()) {
        problems.Add("document " + name + " exists at version " + std::to_string(document->second) +
                     ", but its latest change (seq " + seq + ") deleted it");
      }
    } else if (document == versions.end()) {
      problems.Add("document " + name + " is missing, but its latest change (seq " + seq + ") made version " +
                   std::to_string(entry.version));
    } else if (document->second != entry.version) {
      problems.Add("document " + name + " is at version " + std::to_string(document->second) +
                   ", but its latest change (seq " + seq + ") made version " + std::to_string(entry.version));
    }
  }

  uint64_t indexed = 0;
  s = store.VersionIndex([&](VersionIndexEntry& entry) {
    ++indexed;
    const auto found = made.find(entry.seq);
    if (found == made.end() || found->second != DocumentKey(entry.twin, entry.doc) ||
        made_version[entry.seq] != entry.version) {
      problems.Add("version index: version " + std::to_string(entry.version) + " of " + Name(entry.twin, entry.doc) +
                   " points to seq " + std::to_string(entry.seq) + ", which did not make it");
    }
    return Status::Ok();
  });
  if (!s.ok()) problems.Add("version index: " + s.message());

  uint64_t watches = 0;
  s = store.Watches([&](WatchRecord& watch) {
    ++watches;
    if (!ValidateTwinId(watch.twin).ok() || !ValidateDocumentName(watch.doc).ok() || watch.watcher.empty()) {
      problems.Add("watch of " + Name(watch.twin, watch.doc) + " by \"" + watch.watcher + "\": invalid names");
    }
    return Status::Ok();
  });
  if (!s.ok()) problems.Add("watches: " + s.message());

  std::cout << "schema " << store.schema() << "\n"
            << "twins " << twins << "\n"
            << "documents " << versions.size() << "\n"
            << "watches " << watches << "\n"
            << "change log entries " << entries << ", newest seq " << bounds.newest << "\n"
            << "version index entries " << indexed << "\n";
  if (problems.count() > 0) {
    std::cout << "problems " << problems.count() << "\n";
    return 1;
  }
  std::cout << "ok\n";
  return 0;
}

}  // namespace twins::admin
