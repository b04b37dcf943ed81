// The metrics of mosquitto-twins: what is declared, and how requests are counted.
//
// Every name has the twins_ prefix and base units; labels take values from fixed lists (api,
// operation, result, quota, reason), never a twin or client id, so the number of series is
// bounded (README "Metrics" lists them all). Request counters and histograms are updated on
// the request path with relaxed atomic adds; everything read from elsewhere (store size,
// Graphite queue) is a callback, evaluated when the metrics are rendered.
//
// Extension point: a module with figures of its own (the change-propagation work: watches,
// pushes sent, SSE streams, change-log size) declares them on registry() at plugin start,
// before the registry is shared, with the twins_ prefix and the rules above; they are then
// served on /metrics and published under $SYS/broker/twins/ with no further change.
//
// Thread-safety: Request() and the counters may be used from any thread; declare (the
// constructor, registry().Add*) before sharing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "metrics/registry.hpp"
#include "common/status.hpp"

namespace twins::metrics {

enum class Api { kMqtt, kRest };
inline constexpr size_t kApis = 2;

// get, put, patch, delete (both APIs); list, delete_all (REST); other: an unknown method or path.
enum class Operation { kGet, kPut, kPatch, kDelete, kList, kDeleteAll, kOther };
inline constexpr size_t kOperations = 7;

// ok, one per engine error Code, and unauthenticated (REST: missing or wrong token).
enum class Outcome {
  kOk,
  kInvalidArgument,
  kNotFound,
  kVersionMismatch,
  kQuotaExceeded,
  kTooManyRequests,
  kInsufficientStorage,
  kInternal,
  kUnauthenticated,
  kUnavailable,
};
inline constexpr size_t kOutcomes = 10;

Outcome OutcomeOf(Code code);
// A REST reply's status: 2xx and 304 ok, 400/405/413/415 invalid_argument, 401
// unauthenticated, 403 quota_exceeded, 404 not_found, 412 version_mismatch, 429
// too_many_requests, 503 unavailable, 507 insufficient_storage, other 5xx internal.
Outcome OutcomeOfHttp(int status);
// "get", "put", "patch", "delete"; anything else is kOther.
Operation OperationOfMethod(std::string_view method);

class TwinsMetrics {
 public:
  explicit TwinsMetrics(const std::string& version);
  TwinsMetrics(const TwinsMetrics&) = delete;
  TwinsMetrics& operator=(const TwinsMetrics&) = delete;

  // A finished request: its result and how long it took until its reply left. `quota` is the
  // resource of a kQuotaExceeded ("twin_documents", "twins"; others count as "other").
  void Request(Api api, Operation operation, Outcome outcome, uint64_t nanos, std::string_view quota = {});
  // MQTT: the time the request took on the broker thread (its reply leaves at the loop pass's end).
  void BrokerThread(Operation operation, uint64_t nanos) {
    broker_thread_[static_cast<size_t>(operation)]->ObserveNanos(nanos);
  }

  // A 401 outside the twin endpoints (on /metrics); those of twin requests count through Request().
  void AuthFailure() { auth_failures_->Add(); }
  // A REST twin request refused unchecked because its address keeps failing authentication
  // (rest/auth_guard.hpp): a too_many_requests result, but neither a failed token nor the
  // per-twin rate limit's.
  void AddressRefused(Operation operation, uint64_t nanos);

  // REST event streams (GET .../twin-events): open now, refused for want of a slot, and the
  // change events they sent.
  void StreamOpened() { streams_open_->Add(1); }
  void StreamClosed() { streams_open_->Add(-1); }
  void StreamRefused() { streams_refused_->Add(); }
  void EventsSent(uint64_t events) { stream_events_->Add(events); }

  Registry& registry() { return registry_; }
  const Registry& registry() const { return registry_; }

 private:
  // The request's result and duration; returns the outcome as counted.
  Outcome Count(Api api, Operation operation, Outcome outcome, uint64_t nanos);

  Registry registry_;
  std::array<std::array<std::array<Counter*, kOutcomes>, kOperations>, kApis> requests_{};
  std::array<std::array<Histogram*, kOperations>, kApis> durations_{};
  std::array<Histogram*, kOperations> broker_thread_{};
  Counter* version_conflicts_ = nullptr;
  std::array<Counter*, 3> quota_rejections_{};  // twin_documents, twins, other
  std::array<Counter*, kApis> rate_limited_{};
  Counter* auth_failures_ = nullptr;
  Gauge* streams_open_ = nullptr;
  Counter* streams_refused_ = nullptr;
  Counter* stream_events_ = nullptr;
};

}  // namespace twins::metrics
