#include "metrics/twins_metrics.hpp"

namespace twins::metrics {
namespace {

constexpr std::array<const char*, kApis> kApiNames = {"mqtt", "rest"};
constexpr std::array<const char*, kOperations> kOperationNames = {"get",  "put",        "patch", "delete",
                                                                  "list", "delete_all", "other"};
constexpr std::array<const char*, kOutcomes> kOutcomeNames = {"ok",
                                                              "invalid_argument",
                                                              "not_found",
                                                              "version_mismatch",
                                                              "quota_exceeded",
                                                              "too_many_requests",
                                                              "insufficient_storage",
                                                              "internal",
                                                              "unauthenticated",
                                                              "unavailable"};
constexpr std::array<const char*, 3> kQuotaNames = {"twin_documents", "twins", "other"};

bool Serves(Api api, Operation operation) {
  return api == Api::kRest || (operation != Operation::kList && operation != Operation::kDeleteAll);
}

bool Answers(Api api, Outcome outcome) { return api == Api::kRest || outcome != Outcome::kUnauthenticated; }

}  // namespace

Outcome OutcomeOf(Code code) {
  switch (code) {
    case Code::kOk:
      return Outcome::kOk;
    case Code::kInvalidArgument:
      return Outcome::kInvalidArgument;
    case Code::kNotFound:
      return Outcome::kNotFound;
    case Code::kVersionMismatch:
      return Outcome::kVersionMismatch;
    case Code::kQuotaExceeded:
      return Outcome::kQuotaExceeded;
    case Code::kTooManyRequests:
      return Outcome::kTooManyRequests;
    case Code::kInsufficientStorage:
      return Outcome::kInsufficientStorage;
    case Code::kUnavailable:
      return Outcome::kUnavailable;
    case Code::kInternal:
      break;
  }
  return Outcome::kInternal;
}

Outcome OutcomeOfHttp(int status) {
  if ((status >= 200 && status < 300) || status == 304) return Outcome::kOk;
  switch (status) {
    case 401:
      return Outcome::kUnauthenticated;
    case 403:
      return Outcome::kQuotaExceeded;
    case 404:
      return Outcome::kNotFound;
    case 412:
      return Outcome::kVersionMismatch;
    case 429:
      return Outcome::kTooManyRequests;
    case 503:
      return Outcome::kUnavailable;
    case 507:
      return Outcome::kInsufficientStorage;
    default:
      break;
  }
  return status >= 500 ? Outcome::kInternal : Outcome::kInvalidArgument;
}

Operation OperationOfMethod(std::string_view method) {
  if (method == "get") return Operation::kGet;
  if (method == "put") return Operation::kPut;
  if (method == "patch") return Operation::kPatch;
  if (method == "delete") return Operation::kDelete;
  return Operation::kOther;
}

TwinsMetrics::TwinsMetrics(const std::string& version) {
  Registry& r = registry_;
  r.AddGauge("twins_build_info", "mosquitto-twins build, value 1", {{"version", version}}).Set(1);
  for (size_t a = 0; a < kApis; ++a) {
    for (size_t o = 0; o < kOperations; ++o) {
      if (!Serves(static_cast<Api>(a), static_cast<Operation>(o))) continue;
      for (size_t x = 0; x < kOutcomes; ++x) {
        if (!Answers(static_cast<Api>(a), static_cast<Outcome>(x))) continue;
        requests_[a][o][x] = &r.AddCounter(
            "twins_requests_total", "Twin requests answered, by API, operation and result",
            {{"api", kApiNames[a]}, {"operation", kOperationNames[o]}, {"result", kOutcomeNames[x]}});
      }
    }
  }
  for (size_t a = 0; a < kApis; ++a) {
    for (size_t o = 0; o < kOperations; ++o) {
      if (!Serves(static_cast<Api>(a), static_cast<Operation>(o))) continue;
      durations_[a][o] = &r.AddHistogram(
          "twins_request_duration_seconds",
          "Time from a request's arrival to its reply leaving (MQTT: the loop pass's group commit included)",
          {{"api", kApiNames[a]}, {"operation", kOperationNames[o]}});
    }
  }
  for (size_t o = 0; o < kOperations; ++o) {
    if (!Serves(Api::kMqtt, static_cast<Operation>(o))) continue;
    broker_thread_[o] = &r.AddHistogram("twins_mqtt_broker_thread_seconds",
                                        "Time an MQTT request took on the broker thread, reply excluded",
                                        {{"operation", kOperationNames[o]}});
  }
  version_conflicts_ = &r.AddCounter("twins_version_conflicts_total",
                                     "Writes refused because the document was at another version");
  for (size_t q = 0; q < kQuotaNames.size(); ++q) {
    quota_rejections_[q] = &r.AddCounter("twins_quota_rejections_total", "Writes refused by a quota",
                                         {{"quota", kQuotaNames[q]}});
  }
  for (size_t a = 0; a < kApis; ++a) {
    rate_limited_[a] = &r.AddCounter("twins_rate_limited_total", "Requests refused by the per-twin rate limit",
                                     {{"api", kApiNames[a]}});
  }
  auth_failures_ = &r.AddCounter("twins_rest_auth_failures_total",
                                 "REST requests refused for a missing or wrong token (401)");
  streams_open_ = &r.AddGauge("twins_rest_streams_open", "REST event streams (twin-events) open now");
  streams_refused_ = &r.AddCounter("twins_rest_streams_refused_total",
                                   "REST event streams refused because rest_max_streams were open (503)");
  stream_events_ = &r.AddCounter("twins_rest_stream_events_total", "Change events sent on REST event streams");
}

Outcome TwinsMetrics::Count(Api api, Operation operation, Outcome outcome, uint64_t nanos) {
  const auto a = static_cast<size_t>(api);
  if (!Serves(api, operation)) operation = Operation::kOther;
  if (!Answers(api, outcome)) outcome = Outcome::kInternal;
  const auto o = static_cast<size_t>(operation);
  requests_[a][o][static_cast<size_t>(outcome)]->Add();
  durations_[a][o]->ObserveNanos(nanos);
  return outcome;
}

void TwinsMetrics::AddressRefused(Operation operation, uint64_t nanos) {
  Count(Api::kRest, operation, Outcome::kTooManyRequests, nanos);
}

void TwinsMetrics::Request(Api api, Operation operation, Outcome outcome, uint64_t nanos, std::string_view quota) {
  const auto a = static_cast<size_t>(api);
  switch (Count(api, operation, outcome, nanos)) {
    case Outcome::kVersionMismatch:
      version_conflicts_->Add();
      break;
    case Outcome::kQuotaExceeded:
      quota_rejections_[quota == kQuotaNames[0] ? 0 : quota == kQuotaNames[1] ? 1 : 2]->Add();
      break;
    case Outcome::kTooManyRequests:
      rate_limited_[a]->Add();
      break;
    case Outcome::kUnauthenticated:
      auth_failures_->Add();
      break;
    default:
      break;
  }
}

}  // namespace twins::metrics
