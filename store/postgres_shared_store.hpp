// The PostgreSQL store several brokers share (issue 16). The engine's calls run in batches on
// one thread of each broker (engine/batch_runner.hpp); each batch is one transaction here:
//
//   Begin:  BEGIN; take the write lock (the meta row "seq", FOR UPDATE) when the batch may
//           write; read the changes other brokers committed since this one last heard, the
//           documents, names and watches the batch's calls will need; all in one pipeline.
//   calls:  the engine's reads are answered from what Begin read (a miss is read then, in the
//           transaction); its writes are kept in memory.
//   Join:   (a batch holding the lock) calls queued meanwhile join it: what they will read and
//           the batch has not, in one round trip; then they run as the others did.
//   Sync:   the writes, their change-log entries, the new newest seq, pg_notify and COMMIT,
//           in one pipeline: one round trip and one commit for the whole batch.
//
// The write lock makes batches that write run one at a time over every broker, so the
// engine's rules made in memory over what Begin read are exact (versions, quota, watches),
// and seqs commit in order: a reader that saw seq N never later finds a smaller one. The lock
// is a row lock, the notifications only hints: what pgwire databases without advisory locks
// or LISTEN support (CockroachDB, YugabyteDB) need is a slow poll, which the runner does too.
//
// Thread-safety: Begin, the calls inside a batch, Join, Sync, Rollback and Wait belong to the batch
// thread. Changes, ReadChanges, FindVersion, OldestVersion, ListWatches, Stats, CountContents
// and Writable may be called from any thread (a connection of their own).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "store/document_store.hpp"
#include "store/postgres_store.hpp"

namespace twins {

// What a batch will read, fetched in Begin's round trip.
struct BatchReads {
  std::vector<std::pair<std::string, std::string>> documents;  // (twin, doc)
  std::vector<std::string> twins;                              // their document names and watches
  bool lock = false;                                           // the batch may write: take the write lock first
  bool all_watches = false;                                    // every watch of the store, not only those of `twins`
};

struct BatchStart {
  std::vector<Change> elsewhere;       // committed by other brokers since the last batch, in seq order
  bool gap = false;                    // some of those were trimmed from the log unheard
  std::optional<uint64_t> locked_seq;  // with the lock: the newest seq given out, exact
  // The watches of BatchReads::twins as the store holds them (every watched twin's with
  // all_watches), a twin without watches included with none.
  std::map<std::string, std::vector<WatchRecord>> watches;
  // `watches` holds every watch of the store (after a reconnection or a failed batch): what
  // the engine holds of watches and of `_config` is to be replaced, not updated.
  bool resync = false;
};

// What woke Wait: other brokers committed changes, or changed the watches of these twins.
struct StoreNotices {
  bool changes = false;
  std::vector<std::string> watch_twins;
};

class SharedPostgresStore : public DocumentStore {
 public:
  // Opens the batch's transaction. On failure the transaction is over (nothing to roll back).
  // Once a statement inside the batch failed, every later one fails the same way, and so does
  // Sync: a batch commits whole or not at all.
  virtual Result<BatchStart> Begin(const BatchReads& reads) = 0;
  // Inside a batch that holds the write lock: reads what calls joining it will read (as Begin
  // did, in one round trip), but only the documents and twins the batch has not read yet: what
  // it holds of those may be its own writes. The watches of the twins read now, as
  // BatchStart::watches. A failure fails the batch (Sync reports it).
  virtual Result<std::map<std::string, std::vector<WatchRecord>>> Join(const BatchReads& reads) = 0;
  // Ends the batch without committing (Sync commits it). Nothing when no batch is open.
  virtual void Rollback() = 0;
  // Between batches: until `wake_fd` is readable, a notification came, or `timeout` passed.
  virtual StoreNotices Wait(int wake_fd, std::chrono::milliseconds timeout) = 0;
};

// `options.timeout_ms` bounds every round trip of a batch: past it the batch fails with a
// clear error and the connection is dropped (the next batch connects again).
Result<std::unique_ptr<SharedPostgresStore>> OpenSharedPostgresStore(PostgresOptions options);

}  // namespace twins
