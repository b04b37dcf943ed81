// Where the engine's calls run when its store is shared with other processes (PostgreSQL,
// several brokers): on one thread, in batches, each batch one transaction of the store.
//
// The engine's rules (versions, merge, quota, seq) are made in memory over what the store
// holds. With one process its locks make that exact; with several, the batch's transaction
// takes the store's lock first (store/postgres_shared_store.hpp), reads what its calls will
// need, runs them one after the other on the batch thread, and commits their writes at once.
#pragma once

#include <functional>
#include <string>

#include "common/status.hpp"

namespace twins {

// What a call will read, so that a batch fetches it for all its calls in one round trip
// (a call that reads something else still works: it is read then, at the cost of a trip).
struct BatchHint {
  std::string twin;
  std::string doc;      // empty: none in particular (a list, a delete-all)
  bool writes = false;  // the call may write: the batch takes the store's write lock
};

class BatchRunner {
 public:
  virtual ~BatchRunner() = default;
  // Whether the calling thread is the batch thread, where engine calls run as they are.
  virtual bool OnBatchThread() const = 0;
  // Runs `work` on the batch thread in the next batch and returns once that batch is over:
  // Ok when it committed, else why not (then nothing `work` wrote was kept, or it is uncertain).
  virtual Status RunAndWait(const BatchHint& hint, const std::function<void()>& work) = 0;
  // Queues `work` for a batch and returns at once; `settled` runs on the batch thread once the
  // batch is over, with the same status as RunAndWait's, before any observer hears of the
  // batch's durability (so a reply handed on there leaves before the batch's pushes).
  virtual void Submit(BatchHint hint, std::function<void()> work, std::function<void(const Status&)> settled) = 0;
};

}  // namespace twins
