// GET /iot/v1/regions/{region}/twin-events: the engine's change log as server-sent events.
//
// One event per change, in seq order, each with `id: <seq>`:
//
//   id: 42
//   event: change
//   data: {"seq":42,"time":"2026-11-27T18:05:07.123Z","twin_id":"t","document_name":"d",
//          "operation":"patch","source":"mqtt","version":3,"data":{...}}
//
// (one line; `data` is the whole document after the change, absent for a delete). Query
// filters twin_id and document_name keep the changes of one twin or document. A client
// resumes with Last-Event-ID (what EventSource sends when it reconnects; it wins over
// ?since=<seq>): every retained change after that seq comes first, then the live ones, with
// no gap and none twice. A resumption point older than the log retains (or newer than its
// newest entry: another database) gets `event: reset` with {"oldest_seq","current_seq"}, then
// the changes from now on. No resumption point: the changes from now on.
//
// Streams never hold writers back: each reads the log at its own pace from its own cursor. A
// client that falls max_lag changes further behind the newest than it ever was on this stream
// (a replay's backlog is where it starts, not lag), or behind what the log retains, reads too
// slowly: it gets `event: overflow` with {"cursor_seq","current_seq"} (id: the cursor) and the
// stream ends; it resumes with Last-Event-ID. A client that
// takes nothing at all is dropped after the server's write timeout (request_timeout_ms). A
// comment line every keep-alive interval keeps proxies from closing an idle stream.
//
// At most max_streams at once, each holding one CivetWeb worker thread (the server starts
// that many threads on top of its `threads`, so ordinary requests always have theirs); more
// get 503 with Retry-After. A client that disconnects is noticed when its stream next writes
// (an event or a keep-alive): CivetWeb gives handlers no way to watch the socket meanwhile.
//
// Thread-safety: Open and the streams it starts run on CivetWeb worker threads; Stop from
// any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/log.hpp"
#include "engine/engine.hpp"
#include "metrics/twins_metrics.hpp"
#include "rest/http.hpp"

namespace twins {

inline constexpr std::string_view kTwinEventsSegment = "twin-events";

struct EventStreamOptions {
  int max_streams = 16;      // streams open at once; each holds a worker thread
  uint64_t max_lag = 10000;  // changes a stream may fall further behind than it was before it is ended
  // Longest silence on a stream: a comment line then. An internal constant (tests lower it).
  std::chrono::milliseconds keep_alive{15000};
};

// What a stream sends: the changes of one twin and/or document (empty: all), after `after`
// (nullopt: from now on).
struct EventSubscription {
  std::string twin;
  std::string doc;
  std::optional<uint64_t> after;
};

// Reads the filters and the resumption point of a request into `out`; the 400 reply when one
// of them is bad.
std::optional<HttpResponse> ParseSubscription(const HttpRequest& request, EventSubscription* out);

// The event of one change, ready to send (ends with the blank line).
void AppendChangeEvent(const Change& change, std::string* out);

class EventStreams {
 public:
  // `engine` and `metrics` (nullptr: none) must outlive the streams.
  EventStreams(const Engine& engine, const EventStreamOptions& options, metrics::TwinsMetrics* metrics, LogFn log);
  EventStreams(const EventStreams&) = delete;
  EventStreams& operator=(const EventStreams&) = delete;

  // The reply to an authenticated GET of the events endpoint: 400 (bad filter or resumption
  // point), 503 when max_streams are open, else 200 with a stream that lasts until the client
  // goes, falls behind, or Stop().
  HttpResponse Open(const HttpRequest& request);

  // Ends every stream, promptly once the engine's waiters are woken (Engine::WakeWaiters) and
  // blocked writes given up (the server's stop does both); refuses new ones.
  void Stop() { stopping_.store(true); }
  int open() const { return open_.load(); }

 private:
  class Slot;
  void Run(const EventSubscription& subscription, HttpStreamWriter& out) const;

  const Engine& engine_;
  const EventStreamOptions options_;
  metrics::TwinsMetrics* const metrics_;
  const LogFn log_;
  std::atomic<int> open_{0};
  std::atomic<bool> stopping_{false};
};

}  // namespace twins
