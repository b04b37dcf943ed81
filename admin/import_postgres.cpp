// Import into PostgreSQL, through the store the brokers use (OpenPostgresStore): the documents
// in one Write (one transaction), then each watch, then the change log's start seq. Each of
// these commits on its own, so a failure part way removes again what was written.
#include <iostream>
#include <set>
#include <string>
#include <utility>

#include "admin/commands.hpp"
#include "admin/import.hpp"
#include "store/postgres_snapshot.hpp"
#include "store/postgres_store.hpp"

namespace twins::admin {
namespace {

// Writes the input; `watches_written` counts the watches that reached the store.
Status Write(DocumentStore& store, Input& input, size_t* watches_written) {
  if (!input.documents.empty()) {
    Status s = store.Write(std::move(input.documents));
    if (!s.ok()) return s;
  }
  for (const WatchRecord& watch : input.watches) {
    Status s = store.PutWatch(watch);
    if (!s.ok()) return s;
    ++*watches_written;
  }
  // The log holds no entry of the imported documents: it goes on after the exported seq.
  if (input.seq > 0) {
    Status s = store.StartChangeLogAfter(input.seq);
    if (!s.ok()) return s;
  }
  return store.Sync();
}

// Removes what Write wrote before it failed (the start seq is its last step: never written
// then). The target was empty, so the imported twins go whole.
Status Undo(DocumentStore& store, const std::set<std::string>& twins, const Input& input, size_t watches_written) {
  for (const std::string& twin : twins) {
    Status s = store.DeleteAll(twin);
    if (!s.ok()) return s;
  }
  for (size_t i = 0; i < watches_written; ++i) {
    const WatchRecord& watch = input.watches[i];
    Status s = store.DeleteWatch(watch.twin, watch.doc, watch.watcher);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace

int ImportIntoPostgres(const Target& target, Input input) {
  const PostgresOptions options = target.postgres_options();
  // A broker reads the log's newest seq and the watches at start and goes on from them: one
  // running while the import writes would number changes the import's seq already spent.
  auto use = InspectPostgresTarget(options);
  if (!use.ok()) return Fail("import: " + use.status().message() + "; nothing imported");
  if (use->store_sessions > 0) {
    return Fail("import: refused: " + target.name() + " is in use: " + std::to_string(use->store_sessions) +
                " connection(s) of mosquitto-twins (running brokers?) to its database; stop them first");
  }
  {
    // Read as a snapshot, so that a refusal writes nothing; no schema yet is an empty target.
    auto snapshot = OpenPostgresSnapshot(options);
    Status empty = snapshot.ok() ? CheckEmpty(**snapshot) : snapshot.status();
    if (empty.code() == Code::kInvalidArgument) {
      return Fail("import: refused: " + target.name() + " is not empty: " + empty.message() +
                  "; import only into a new or empty one");
    }
    if (!empty.ok() && empty.code() != Code::kNotFound) return Fail("import: refused: " + empty.message());
  }
  // The start seq goes where the store keeps it (StartChangeLogAfter), which the brokers' seq
  // counter, once made, no longer follows.
  if (use->shared_seq && input.seq > 0) {
    return Fail("import: refused: brokers have opened " + target.name() +
                " already, and their seq counter would not go on after the export's seq " + std::to_string(input.seq) +
                ": drop that schema (empty) and import before the brokers' first start");
  }

  auto store = OpenPostgresStore(options);
  if (!store.ok()) return Fail("import: " + store.status().message() + "; nothing imported");
  std::set<std::string> twins;
  for (const DocumentWrite& write : input.documents) twins.insert(write.twin);
  const size_t documents = input.documents.size();
  size_t watches_written = 0;
  Status written = Write(**store, input, &watches_written);
  if (!written.ok()) {
    Status undone = Undo(**store, twins, input, watches_written);
    if (!undone.ok()) {
      return Fail("import: " + written.message() + "; then removing what was written failed too (" + undone.message() +
                  "): " + target.name() + " holds part of the import; drop that schema before importing again");
    }
    return Fail("import: " + written.message() + "; nothing imported");
  }
  std::cout << "imported " << documents << " documents and " << input.watches.size() << " watches into "
            << target.name() << "\n";
  return 0;
}

}  // namespace twins::admin
