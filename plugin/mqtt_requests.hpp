// The in-band API's topic grammar and request handling, free of broker calls so that the
// plugin callback stays a thin translator.
//
//   request:  $SCW/twins/<twin_id|me>/<document_name>/<method>
//   replies:  <request topic>/response/success | <request topic>/response/error
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "engine/engine.hpp"
#include "engine/rate_limiter.hpp"

namespace twins {

inline constexpr std::string_view kTwinTopicPrefix = "$SCW/twins/";

enum class TopicKind {
  kNotTwin,    // outside $SCW/twins/: not ours, untouched
  kMethod,     // $SCW/twins/<twin>/<doc>/<method>: answered (maybe with an error)
  kOtherTwin,  // any other topic under $SCW/twins/: dropped without reply
};

struct TwinTopic {
  std::string_view twin;  // as the request spelled it ("me" included)
  std::string_view document;
  std::string_view method;
};

TopicKind ClassifyTopic(std::string_view topic, TwinTopic* parsed);

struct Reply {
  std::string topic;
  std::string payload;
  bool success = false;
  uint64_t version = 0;   // of the document a success shows
  Code code = Code::kOk;  // for the metrics: the error's kind, and a quota error's resource
  std::string quota = {};
};

// Who is asking: the twin the connection owns (its client id or its authenticated username,
// see plugin_opt_twin_identity), or nothing when the connection has no such identity.
struct Requester {
  std::optional<std::string_view> twin;
  std::string_view missing_reason;  // the error when twin is empty
};

// The twin a request of `requester` acts on, or why it may not run: no identity, another
// twin, or too many requests (`limiter` admits the requests of each twin; a token is taken).
Result<std::string_view> AdmitRequest(RateLimiter& limiter, const Requester& requester, const TwinTopic& parsed);

// The requesting connection, as a request needs it.
struct RequestContext {
  Durability durability = Durability::kBeforeReturn;
  std::string_view client_id;  // the watcher of a watch, the origin of a write
  int qos = 0;                 // of the request: a watch's pushes go out at it
};

// Runs one admitted request on `twin` and builds its reply. Never throws. With
// Durability::kAtSync the caller must Sync() the engine before the reply leaves, and send
// ErrorReply() instead of a success if that fails. An internal error (a database failure, an
// exception) is logged through `log` and answered with its log id only (ReportInternalError).
//   get, put, patch, delete: reply {"version":N,"data":{...}} (delete: the document deleted)
//   watch: registers the client for the document's changes, replies the document as now
//          ({"version":0,"data":{}} when it does not exist); unwatch: replies {}
Reply HandleTwinRequest(Engine& engine, std::string_view twin, std::string_view request_topic, const TwinTopic& parsed,
                        std::string_view payload, const RequestContext& context, const LogFn& log);

// A watch's value, kept with it by the engine: the QoS of its pushes and the twin as the
// watch request spelled it ("me" or the id), which the push topics repeat.
std::string WatchValue(int qos, std::string_view spelling);
struct WatchTarget {
  int qos;
  std::string_view spelling;
};
WatchTarget ParseWatchValue(std::string_view value);

// The error reply to the request on `request_topic`; `log` as for HandleTwinRequest.
Reply ErrorReply(std::string_view request_topic, const Status& status, const LogFn& log);

}  // namespace twins
