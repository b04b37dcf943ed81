#include "rest/event_stream.hpp"

#include <algorithm>
#include <exception>
#include <memory>
#include <utility>
#include <vector>

#include "engine/change_json.hpp"
#include "engine/names.hpp"
#include "rest/errors.hpp"
#include "rest/path.hpp"

namespace twins {
namespace {

// One read of the log: enough to keep a fast client busy, little enough to stay in cache.
constexpr size_t kBatchCount = 256;
constexpr size_t kBatchBytes = 1 << 20;
constexpr uint64_t kMaxResumeSeq = uint64_t{1} << 63;
// How long a resumption from a seq this broker has not heard of waits for it, with a store
// shared with other brokers: past the batch thread's poll (cluster/batch_thread.hpp, 1 s).
constexpr auto kCatchUpWait = std::chrono::seconds(2);
constexpr char kRetryAfterSeconds[] = "5";

// A filter from the query: absent, or a valid name (`validate` is the engine's rule).
std::optional<HttpResponse> ReadFilter(std::string_view query, std::string_view name,
                                       Status (*validate)(std::string_view), std::string* out) {
  QueryParameter parameter = FindQueryParameter(query, name);
  if (!parameter.present) return std::nullopt;
  if (!parameter.valid) return InvalidArgument(name, "format", "the value has an invalid percent-encoding");
  Status status = validate(parameter.value);
  if (!status.ok()) return InvalidArgument(name, "constraint", status.message());
  *out = std::move(parameter.value);
  return std::nullopt;
}

bool Matches(const EventSubscription& subscription, const Change& change) {
  return (subscription.twin.empty() || subscription.twin == change.twin) &&
         (subscription.doc.empty() || subscription.doc == change.doc);
}

// `event: <name>` with {"<first>":a,"<second>":b}, and `id: <id>` so that a client that
// reconnects resumes after it.
std::string ControlEvent(std::string_view name, uint64_t id, std::string_view first, uint64_t a,
                         std::string_view second, uint64_t b) {
  std::string out = "id: " + std::to_string(id) + "\nevent: ";
  out += name;
  out += "\ndata: {\"";
  out += first;
  out += "\":" + std::to_string(a) + ",\"";
  out += second;
  out += "\":" + std::to_string(b) + "}\n\n";
  return out;
}

}  // namespace

std::optional<HttpResponse> ParseSubscription(const HttpRequest& request, EventSubscription* out) {
  const std::string_view query = request.query();
  if (auto bad = ReadFilter(query, "twin_id", &ValidateTwinId, &out->twin)) return bad;
  if (auto bad = ReadFilter(query, "document_name", &ValidateDocumentName, &out->doc)) return bad;
  // EventSource reconnects to the same URL with Last-Event-ID: the header is the newer word.
  const std::string_view header = request.header("Last-Event-ID");
  if (!header.empty()) {
    out->after = ParseWholeNumber(header, kMaxResumeSeq);
    if (!out->after) {
      return InvalidArgument("Last-Event-ID", "format", "Last-Event-ID must be an event id, a whole number up to 2^63");
    }
    return std::nullopt;
  }
  QueryParameter since = FindQueryParameter(query, "since");
  if (!since.present) return std::nullopt;
  out->after = since.valid ? ParseWholeNumber(since.value, kMaxResumeSeq) : std::nullopt;
  if (!out->after) return InvalidArgument("since", "format", "since must be an event id, a whole number up to 2^63");
  return std::nullopt;
}

void AppendChangeEvent(const Change& change, std::string* out) {
  *out += "id: ";
  *out += std::to_string(change.seq);
  *out += "\nevent: change\ndata: ";
  *out += ChangeJson(change);  // compact JSON: one line
  *out += "\n\n";
}

// A stream's place among the max_streams; given back when the reply (and its stream) goes.
class EventStreams::Slot {
 public:
  explicit Slot(EventStreams& streams) : streams_(streams) {
    if (streams_.metrics_ != nullptr) streams_.metrics_->StreamOpened();
  }
  ~Slot() {
    if (streams_.metrics_ != nullptr) streams_.metrics_->StreamClosed();
    streams_.open_.fetch_sub(1);
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

 private:
  EventStreams& streams_;
};

EventStreams::EventStreams(const Engine& engine, const EventStreamOptions& options, metrics::TwinsMetrics* metrics,
                           LogFn log)
    : engine_(engine), options_(options), metrics_(metrics), log_(std::move(log)) {}

HttpResponse EventStreams::Open(const HttpRequest& request) {
  EventSubscription subscription;
  if (auto bad = ParseSubscription(request, &subscription)) return std::move(*bad);
  bool admitted = false;
  if (!stopping_.load()) {
    admitted = open_.fetch_add(1) < options_.max_streams;
    if (!admitted) open_.fetch_sub(1);
  }
  if (!admitted) {
    if (metrics_ != nullptr) metrics_->StreamRefused();
    HttpResponse busy = Unavailable("too many event streams are open; retry later");
    busy.retry_after = kRetryAfterSeconds;
    return busy;
  }
  auto slot = std::make_shared<Slot>(*this);
  HttpResponse response;
  response.content_type = "text/event-stream";
  response.headers.emplace_back("Cache-Control", "no-cache");
  response.headers.emplace_back("X-Accel-Buffering", "no");  // nginx: pass events on at once
  response.stream = [this, slot, subscription = std::move(subscription)](HttpStreamWriter& out) {
    try {
      Run(subscription, out);
    } catch (const std::exception& e) {
      if (log_) log_(LogLevel::kError, std::string("REST: event stream failed: ") + e.what());
    } catch (...) {
      if (log_) log_(LogLevel::kError, "REST: event stream failed with an unknown exception");
    }
  };
  return response;
}

void EventStreams::Run(const EventSubscription& subscription, HttpStreamWriter& out) const {
  using Clock = std::chrono::steady_clock;
  ChangeBounds bounds = engine_.Changes();
  if (subscription.after && *subscription.after > bounds.newest && engine_.Shared()) {
    // A client moving from another broker resumes with that broker's last seq, which this one
    // may not have heard of yet: it hears within a notification's time (the batch thread's
    // poll without them). Waited for rather than answered with a reset.
    engine_.WaitForChanges(*subscription.after - 1, Clock::now() + kCatchUpWait);
    bounds = engine_.Changes();
  }
  uint64_t cursor = bounds.newest;  // every change up to it is sent or filtered out
  if (subscription.after) {
    const uint64_t after = *subscription.after;
    if (after + 1 < bounds.oldest || after > bounds.newest) {
      if (!out.Write(ControlEvent("reset", bounds.newest, "oldest_seq", bounds.oldest, "current_seq", bounds.newest))) {
        return;
      }
    } else {
      cursor = after;
    }
  }
  // The headers are out; a first comment makes proxies and clients see the stream open.
  if (!out.Write(": stream open\n\n")) return;
  Clock::time_point last_write = Clock::now();
  std::string events;
  // A replay's backlog is where the stream starts, not lag: it falls behind when it gets
  // more than max_lag further behind than it ever was.
  uint64_t best_lag = bounds.newest - std::min(cursor, bounds.newest);
  while (!stopping_.load()) {
    // Fallen behind, or the log dropped changes the cursor has not passed.
    bounds = engine_.Changes();
    const uint64_t lag = bounds.newest > cursor ? bounds.newest - cursor : 0;
    best_lag = std::min(best_lag, lag);
    if (lag > 0 && (lag - best_lag > options_.max_lag || cursor + 1 < bounds.oldest)) {
      (void)out.Write(ControlEvent("overflow", cursor, "cursor_seq", cursor, "current_seq", bounds.newest));
      return;
    }
    Result<std::vector<Change>> batch = engine_.ReadChanges(cursor, kBatchCount, kBatchBytes);
    if (!batch.ok()) {
      if (log_) log_(LogLevel::kError, "REST: event stream cannot read the change log: " + batch.status().message());
      return;
    }
    if (!batch->empty() && batch->front().seq > cursor + 1 && cursor + 1 < engine_.Changes().oldest) {
      continue;  // trimmed between the two reads: the check above ends the stream
    }
    events.clear();
    uint64_t sent = 0;
    for (const Change& change : *batch) {
      if (change.seq <= cursor) continue;
      cursor = change.seq;
      if (!Matches(subscription, change)) continue;
      AppendChangeEvent(change, &events);
      ++sent;
    }
    const Clock::time_point now = Clock::now();
    if (!events.empty()) {
      // Counted before they leave, so a client that scrapes next sees them.
      if (metrics_ != nullptr) metrics_->EventsSent(sent);
      if (!out.Write(events)) return;
      last_write = now;
      continue;
    }
    if (now - last_write >= options_.keep_alive) {
      if (!out.Write(": keep-alive\n\n")) return;
      last_write = now;
      continue;
    }
    if (batch->empty()) (void)engine_.WaitForChanges(cursor, last_write + options_.keep_alive);
  }
}

}  // namespace twins
