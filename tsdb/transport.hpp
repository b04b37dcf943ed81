// Delivery of encoded points to one Graphite target. The sender thread owns its transport;
// a transport is never used from two threads.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "tsdb/series.hpp"
#include "common/status.hpp"
#include "tsdb/target.hpp"

namespace twins {

class Transport {
 public:
  using Deadline = std::chrono::steady_clock::time_point;

  virtual ~Transport() = default;
  // Delivers the batch, giving up at `deadline`. Ok: delivered (for TCP: written to the
  // connection; the plaintext protocol has no acknowledgement). InvalidArgument: the target
  // refused these points for good, retrying cannot help. Anything else: try again later.
  virtual Status Send(const std::vector<EncodedPoint>& batch, Deadline deadline) = 0;
  // Whether what Send delivered is known to have arrived, and since when the connection has
  // carried it: a TCP peer that accepts and never reads takes the first writes of every new
  // connection into its buffers, so one Ok proves nothing there. TCP: the connection is open
  // and the peer acknowledged every byte written on it before the last batch. Transports
  // whose every Send is acknowledged (HTTP) are always confirmed, since forever.
  virtual bool Confirmed() { return true; }
  virtual Deadline ConnectedSince() const { return Deadline::min(); }
};

// Carbon's plaintext line protocol over one kept-open TCP connection, reopened on failure.
std::unique_ptr<Transport> MakeCarbonTcpTransport(const GraphiteTarget& target);

// One POST of the JSON array per batch through libcurl, connection kept alive.
// `interval_seconds` fills each point's "interval".
std::unique_ptr<Transport> MakeHttpTransport(const GraphiteTarget& target, int interval_seconds);

}  // namespace twins
