#include "plugin/mqtt_requests.hpp"

#include <algorithm>
#include <exception>

namespace twins {
namespace {

// The MQTT side of the Status mapping: {"error": message, ...details}. An internal error's
// detail goes to the log, not to the device (ReportInternalError).
std::string ErrorJson(const Status& status, std::string_view request_topic, std::string_view twin,
                      std::string_view document, const LogFn& log) {
  if (status.code() == Code::kInternal) {
    const std::string detail = "MQTT: internal error on " + std::string(request_topic) + ": " + status.message();
    return "{\"error\":" + QuoteJson(ReportInternalError(log, detail)) + "}";
  }
  std::string out = "{\"error\":" + QuoteJson(status.message());
  switch (status.code()) {
    case Code::kVersionMismatch:
      out += ",\"twin_id\":" + QuoteJson(twin) + ",\"document_name\":" + QuoteJson(document) +
             ",\"expected_version\":" + std::to_string(status.expected()) +
             ",\"actual_version\":" + std::to_string(status.actual());
      break;
    case Code::kInvalidArgument:
      out += ",\"argument\":" + QuoteJson(status.field());
      break;
    case Code::kTooManyRequests:
      out += ",\"retry_after_ms\":" + std::to_string(status.retry_after_ms());
      break;
    case Code::kQuotaExceeded:
      out += ",\"resource\":" + QuoteJson(status.field()) + ",\"quota\":" + std::to_string(status.quota()) +
             ",\"current\":" + std::to_string(status.current());
      break;
    case Code::kInsufficientStorage:
      out += ",\"resource\":" + QuoteJson(status.field()) + ",\"min_free_mb\":" + std::to_string(status.min_free_mb()) +
             ",\"free_mb\":" + std::to_string(status.free_mb());
      break;
    default:
      break;
  }
  return out + "}";
}

// What a successful request replies: its payload, and the version of the document it shows.
struct Outcome {
  std::string payload;
  uint64_t version = 0;
};

Result<Outcome> Shown(Result<Document> document) {
  if (!document.ok()) return document.status();
  return Outcome{DocumentJson(document.value()), document->version};
}

// watch and unwatch take no arguments: an empty payload or {} (whitespace allowed).
bool IsEmptyRequest(std::string_view payload) {
  std::string compact;
  for (char c : payload) {
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') compact += c;
    if (compact.size() > 2) return false;
  }
  return compact.empty() || compact == "{}";
}

Result<Outcome> Run(Engine& engine, std::string_view twin, const TwinTopic& topic, std::string_view payload,
                    const RequestContext& context) {
  if (topic.method == "get") return Shown(engine.Get(twin, topic.document));
  const WriteContext write{context.durability, "mqtt", context.client_id};
  if (topic.method == "watch" || topic.method == "unwatch") {
    if (!IsEmptyRequest(payload)) {
      return Status::InvalidArgument("payload", std::string(topic.method) + " takes an empty payload or {}");
    }
    if (topic.method == "watch") {
      return Shown(engine.Watch(twin, topic.document, context.client_id, WatchValue(context.qos, topic.twin),
                                context.durability));
    }
    Status s = engine.Unwatch(twin, topic.document, context.client_id, context.durability);
    if (!s.ok()) return s;
    return Outcome{"{}", 0};
  }
  const bool is_delete = topic.method == "delete";
  if (!is_delete && topic.method != "put" && topic.method != "patch") {
    return Status::InvalidArgument("method", "unknown method '" + std::string(topic.method) +
                                                 "' (known: get, put, patch, delete, watch, unwatch)");
  }
  auto request = ParseWriteRequest(payload, engine.limits(), is_delete ? BodyOf::kDelete : BodyOf::kPutOrPatch);
  if (!request.ok()) return request.status();
  if (is_delete) return Shown(engine.Delete(twin, topic.document, request->expected, write));
  if (topic.method == "put") return Shown(engine.Put(twin, topic.document, request.value(), write));
  return Shown(engine.Patch(twin, topic.document, request.value(), write));
}

Reply MakeErrorReply(std::string_view request_topic, const Status& status, std::string_view twin,
                     std::string_view document, const LogFn& log) {
  return {std::string(request_topic) + "/response/error",
          ErrorJson(status, request_topic, twin, document, log),
          false,
          0,
          status.code(),
          status.code() == Code::kQuotaExceeded ? status.field() : std::string()};
}

}  // namespace

TopicKind ClassifyTopic(std::string_view topic, TwinTopic* parsed) {
  if (topic.compare(0, kTwinTopicPrefix.size(), kTwinTopicPrefix) != 0) return TopicKind::kNotTwin;
  std::string_view rest = topic.substr(kTwinTopicPrefix.size());
  std::string_view levels[3];
  for (int i = 0; i < 3; ++i) {
    size_t slash = rest.find('/');
    if ((slash == std::string_view::npos) != (i == 2)) return TopicKind::kOtherTwin;
    levels[i] = rest.substr(0, slash);
    if (i < 2) rest.remove_prefix(slash + 1);
  }
  *parsed = {levels[0], levels[1], levels[2]};
  return TopicKind::kMethod;
}

Result<std::string_view> AdmitRequest(RateLimiter& limiter, const Requester& requester, const TwinTopic& parsed) {
  if (!requester.twin) return Status::InvalidArgument("twin_id", std::string(requester.missing_reason));
  const std::string_view twin = parsed.twin == "me" ? *requester.twin : parsed.twin;
  if (twin != *requester.twin) {
    return Status::InvalidArgument("twin_id", "a device may only use its own twin (its client id, or 'me')");
  }
  if (const uint64_t wait_ms = limiter.Acquire(twin)) return Status::TooManyRequests(wait_ms);
  return twin;
}

std::string WatchValue(int qos, std::string_view spelling) {
  std::string value(1, static_cast<char>('0' + std::clamp(qos, 0, 2)));
  value.append(spelling);
  return value;
}

WatchTarget ParseWatchValue(std::string_view value) {
  if (value.empty() || value[0] < '0' || value[0] > '2') return {0, value};
  return {value[0] - '0', value.substr(1)};
}

Reply HandleTwinRequest(Engine& engine, std::string_view twin, std::string_view request_topic, const TwinTopic& parsed,
                        std::string_view payload, const RequestContext& context, const LogFn& log) {
  Result<Outcome> result = Status::Internal("request not run");
  try {
    result = Run(engine, twin, parsed, payload, context);
  } catch (const std::exception& e) {
    result = Status::Internal(std::string("request failed: ") + e.what());
  }
  if (!result.ok()) return MakeErrorReply(request_topic, result.status(), twin, parsed.document, log);
  return {std::string(request_topic) + "/response/success", std::move(result->payload), true, result->version};
}

Reply ErrorReply(std::string_view request_topic, const Status& status, const LogFn& log) {
  return MakeErrorReply(request_topic, status, {}, {}, log);
}

}  // namespace twins
