// A broker started while PostgreSQL is down (a reboot where the broker comes up first, a
// failover under way) must still run: non-twin traffic is not the twin store's to stop
// (issue 16). When the server cannot be reached at start, the shared store is opened later,
// by the first batch that finds it reachable; until then every batch fails "unavailable",
// as during an outage after start, and /healthz says so.
//
// What the store answers before it is open: no watches, no changes. Once open, its first
// batch reads every watch and starts the engine's seqs at the store's newest. An event stream
// opened before that started at seq 0: it is then sent the retained log from its start, or
// ends with `overflow` when that is more than its lag allows (its client reconnects).
#pragma once

#include <memory>

#include "common/status.hpp"
#include "store/postgres_shared_store.hpp"

namespace twins {

// Opens the shared store now when PostgreSQL answers. When it cannot be reached (refused,
// not answering within the timeout, authentication refused), returns a store that opens it
// at a later batch (trying at most every 250 ms, backing off to 5 s while it stays down);
// the failure is then in `*deferred_because` (else it is left ok). Anything else (a malformed URI, an
// unreadable password file, a schema of an unknown version) is returned as the error: the
// admin's to fix, not to wait out.
Result<std::unique_ptr<SharedPostgresStore>> OpenSharedPostgresStoreOrLater(const PostgresOptions& options,
                                                                            Status* deferred_because);

}  // namespace twins
