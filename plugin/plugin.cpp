// mosquitto-twins: device twins for Mosquitto 2.0 and 2.1 (plugin API v5).
//
// Devices publish on $SCW/twins/<id|me>/<document>/<get|put|patch|delete> and receive the
// reply on <request topic>/response/success or /response/error (or on the MQTT 5 Response
// Topic of the request, when it has one), sent to that client only.
// Requests are answered here and never delivered to subscribers. Documents live in RocksDB.
//
// Configure with one line in mosquitto.conf, plus plugin_opt_* settings (all optional,
// documented in mosquitto.conf.example):
//
//   plugin /usr/lib/x86_64-linux-gnu/mosquitto_twins.so
//   plugin_opt_db_path /var/lib/mosquitto/twins
//
// Global plugin only: under `per_listener_settings true` mosquitto before 2.0.15 never sends
// the tick event this plugin uses to run work from its other threads on the broker thread.
//
// Runs on Mosquitto 2.0.x and 2.1: the broker's loop differs (see OnTick), and the MQTT helper
// functions it uses come from libmosquitto, since upstream brokers do not export them.
//
// It also checks access (MOSQ_EVT_ACL_CHECK, registered at init so that it runs before an
// acl_file and the plugins listed after it): nothing under $SCW/twins/ reaches subscribers,
// so no client can forge a reply by publish, retained message or Will (access_guard.hpp).
//
// Work its other threads hand to the broker thread (BrokerQueue) runs at once: the plugin keeps
// one MQTT connection to the broker's own listener and wakes it through it (broker_wake.hpp).

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster/batch_thread.hpp"
#include "plugin/access_guard.hpp"
#include "plugin/broker_config.hpp"
#include "plugin/broker_queue.hpp"
#include "plugin/broker_wake.hpp"
#include "plugin/change_pusher.hpp"
#include "engine/engine.hpp"
#include "tsdb/graphite.hpp"
#include "common/log.hpp"
#include "tsdb/observer.hpp"
#include "plugin/options.hpp"
#include "plugin/plugin_metrics.hpp"
#include "plugin/publish_reply.hpp"
#include "engine/rate_limiter.hpp"
#include "plugin/reply_owners.hpp"
#include "plugin/resend_filter.hpp"
#include "rest/auth.hpp"
#include "rest/rest_server.hpp"
#include "plugin/store_reclaimer.hpp"
#include "store/postgres_deferred_store.hpp"
#include "store/postgres_shared_store.hpp"
#include "metrics/sys_topics.hpp"
#include "plugin/durable_samples.hpp"
#include "plugin/mqtt_requests.hpp"
#include "metrics/twins_metrics.hpp"

namespace twins {
namespace {

constexpr size_t kBrokerQueueCapacity = 100000;
constexpr auto kTickGrace = std::chrono::seconds(2);  // ticks come about ten times a second
// Asked of brokers that take a tick interval (2.1), so that REST and Graphite log lines and
// the store reclaimer do not wait for an idle broker's next wake-up (5-10 s without websockets).
constexpr long kTickIntervalMs = 100;
constexpr auto kContentCountInterval = std::chrono::seconds(30);
using Clock = std::chrono::steady_clock;

uint64_t NanosSince(Clock::time_point start, Clock::time_point now) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - start).count());
}

// A line in the broker's log, written now: on the broker thread only.
void LogNow(LogLevel level, const std::string& message) {
  const int mosq_level = level == LogLevel::kError     ? MOSQ_LOG_ERR
                         : level == LogLevel::kWarning ? MOSQ_LOG_WARNING
                                                       : MOSQ_LOG_INFO;
  mosquitto_log_printf(mosq_level, "twins: %s", message.c_str());
}

// The plugin's one context, handed to every callback as userdata.
struct QueuedRequest;

struct Plugin {
  mosquitto_plugin_id_t* id = nullptr;
  PluginOptions options;
  AccessSetup access;
  BrokerQueue broker_queue{kBrokerQueueCapacity};
  std::unique_ptr<BrokerWake> wake;  // none: work waits for the tick
  OthersAuth others_auth = OthersAuth::kDefer;
  metrics::Counter* wakes = nullptr;
  std::unique_ptr<RateLimiter> request_limiter;
  ResendFilter resends;
  ReplyOwners reply_owners;
  StoreReclaimer reclaimer;
  metrics::TwinsMetrics metrics{TWINS_VERSION};  // outlives REST, which renders it
  metrics::SysTopics sys_topics;
  Clock::time_point next_sys_publish;
  // Destroyed in reverse order: REST stops before the observers, which go after the engine.
  std::unique_ptr<ChangePusher> pusher;
  std::unique_ptr<DurableSamples> held_samples;
  std::unique_ptr<Engine> engine;
  // With plugin_opt_store postgresql://: the thread where the engine's calls run, in batches
  // (cluster/batch_thread.hpp). Requests then leave the broker thread (QueueRequest).
  std::unique_ptr<BatchThread> batches;
  std::unique_ptr<ContentCounter> contents;  // reads the engine; read by REST
  std::unique_ptr<GraphiteSender> graphite;
  std::unique_ptr<TsdbObserver> tsdb;
  std::unique_ptr<RestServer> rest;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool tick_seen = false;
  bool warned_no_tick = false;
  // Group commit: writes wait for the tick's Sync() and replies for the tick. Only on brokers
  // whose tick ends the loop pass (see OnTick); elsewhere each write is durable before its
  // reply is published from the MESSAGE callback.
  bool group_commit = false;

  // Replies of the current loop pass. Mosquitto 2.0 sends what a plugin publishes at the start
  // of the next pass, after the tick: held until the tick, they leave no later, and only once
  // the tick's Sync() made the pass's writes durable.
  struct HeldReply {
    const mosquitto* client;  // the requesting connection; its reply is dropped if it goes
    std::string client_id;
    std::string request_topic;
    bool write;  // put, patch or delete
    Reply reply;
    int qos;
    std::optional<std::string> correlation;
    metrics::Operation operation;
    Clock::time_point arrived;
    bool remembered = false;                    // as a QoS 2 write (ResendFilter): forgotten if the sync fails
    std::optional<std::string> response_topic;  // the request's MQTT 5 Response Topic
  };
  std::vector<HeldReply> held_replies;
  // With twins named by username, a client id names no twin: another user may connect with a
  // watcher's client id. Pushes go to a client id only while its connection has made a
  // request, or subscribed under $SCW/twins/, as a user of the watched twin.
  struct Requesting {
    const mosquitto* connection;
    std::string twin;
  };
  std::unordered_map<std::string, Requesting> requesting;
  // Connections gone during this loop pass: a Will checked after its connection's DISCONNECT
  // event must not get a reply either.
  std::vector<const mosquitto*> gone_this_pass;
  // Requests handed to the batch thread, by id: the requesting connection, nulled when it
  // goes (its reply is then dropped). And how many each connection has there: while it has
  // any, its other replies follow them through the batch thread, so that replies keep the
  // order of their requests.
  std::unordered_map<uint64_t, const mosquitto*> in_flight;
  std::unordered_map<const mosquitto*, size_t> in_flight_by_connection;
  // Each client's latest QoS 2 write handed to the batch thread and not yet answered: a copy
  // re-sent meanwhile (after a reconnection) follows it instead of running again, since the
  // resend filter hears of a write only once it is answered.
  std::unordered_map<std::string, std::shared_ptr<QueuedRequest>> exactly_once_in_flight;
  uint64_t next_request_id = 0;

  // REST threads may wait for the batch thread, which calls the observers and the engine.
  ~Plugin() {
    rest.reset();
    batches.reset();
  }
  Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  // For threads other than the broker's: the line is written on the next tick.
  LogFn DeferredLog() {
    return [this](LogLevel level, const std::string& message) {
      broker_queue.Push([level, message] { LogNow(level, message); });
    };
  }
};

void WarnIfTickNeverCame(Plugin& plugin) {
  if (plugin.tick_seen || plugin.warned_no_tick) return;
  if (std::chrono::steady_clock::now() - plugin.started < kTickGrace) return;
  plugin.warned_no_tick = true;
  mosquitto_log_printf(MOSQ_LOG_WARNING,
                       "twins: the broker sends no tick events (per_listener_settings true?): REST and Graphite "
                       "log lines cannot be written. Load mosquitto_twins as a global plugin.");
}

// The request's MQTT 5 Response Topic, if it has one that a reply may be published on.
// Brokers refuse a PUBLISH whose Response Topic holds a wildcard or invalid UTF-8 (a protocol
// error: the client is disconnected); this repeats the check rather than rely on it.
struct ResponseTopic {
  std::optional<std::string> topic;
  bool valid = true;
};

ResponseTopic ResponseTopicOf(const mosquitto_evt_message& msg) {
  char* value = nullptr;
  if (mosquitto_property_read_string(msg.properties, MQTT_PROP_RESPONSE_TOPIC, &value, false) == nullptr) return {};
  std::string topic = value != nullptr ? value : "";
  std::free(value);
  const bool valid = !topic.empty() &&
                     mosquitto_validate_utf8(topic.data(), static_cast<int>(topic.size())) == MOSQ_ERR_SUCCESS &&
                     mosquitto_pub_topic_check(topic.c_str()) == MOSQ_ERR_SUCCESS;
  return {std::move(topic), valid};
}

void Publish(const char* client_id, const Reply& reply, int qos, const std::optional<std::string>& correlation) {
  int rc = PublishReply(client_id, reply.topic, reply.payload, qos, correlation);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_WARNING, "twins: cannot reply to %s on %s: %s", client_id, reply.topic.c_str(),
                         mosquitto_strerror(rc));
  }
}

// A reply to `connection`. One on a Response Topic outside $SCW/twins/ is remembered, so that
// it is never read through another connection of the client id (reply_owners.hpp).
void Answer(Plugin& plugin, const mosquitto* connection, const char* client_id, const Reply& reply, int qos,
            const std::optional<std::string>& correlation) {
  if (!IsTwinTerritory(reply.topic)) plugin.reply_owners.Published(client_id, connection, reply.topic, reply.payload);
  Publish(client_id, reply, qos, correlation);
}

Requester RequesterOf(const Plugin& plugin, const mosquitto* client) {
  if (plugin.options.twin_identity == TwinIdentity::kUsername) {
    const char* username = mosquitto_client_username(client);
    if (username == nullptr) {
      return {std::nullopt, "this broker names twins by username: connect with a username (or a client certificate)"};
    }
    return {std::string_view(username), {}};
  }
  return {std::string_view(mosquitto_client_id(client)), {}};
}

// A QoS 2 write that repeats the client's last one, on a later connection, is taken for
// its re-send when that is sure (resend_filter.hpp): answered from memory, not run again.
std::optional<Reply> FindResend(Plugin& plugin, const char* client_id, const mosquitto_evt_message& msg,
                                std::string_view twin, const TwinTopic& parsed, std::string_view payload,
                                const std::optional<std::string>& correlation) {
  const ResendFilter::Remembered* last = plugin.resends.Find(client_id, twin, msg.topic, payload, correlation);
  if (last == nullptr || last->connection == msg.client) return std::nullopt;
  if (!last->by_correlation) {
    auto now = plugin.engine->Get(twin, parsed.document);
    const uint64_t version = now.ok() ? now->version : 0;
    if (version != last->version) return std::nullopt;
  }
  Reply reply{last->reply_topic, last->reply_payload, true, last->version};
  plugin.resends.Claim(client_id, msg.client);
  return reply;
}

// Under twin_identity username: the twin of the user behind `connection`, now the client id's.
void NoteRequester(Plugin& plugin, const mosquitto* connection, const char* client_id, const Requester& requester) {
  if (plugin.options.twin_identity != TwinIdentity::kUsername) return;
  if (requester.twin) {
    plugin.requesting[client_id] = {connection, std::string(*requester.twin)};
  } else {
    plugin.requesting.erase(client_id);
  }
}

// Broker thread: the pushes and event-feed messages of every change made durable so far.
void PublishChanges(Plugin& plugin) {
  if (!plugin.pusher) return;
  const bool by_username = plugin.options.twin_identity == TwinIdentity::kUsername;
  for (const OutgoingMessage& message : plugin.pusher->TakeReady()) {
    const char* to = message.client_id.empty() ? nullptr : message.client_id.c_str();
    if (to != nullptr && by_username) {
      auto found = plugin.requesting.find(message.client_id);
      if (found == plugin.requesting.end() || found->second.twin != message.twin) continue;
    }
    const int rc = mosquitto_broker_publish_copy(to, message.topic.c_str(), static_cast<int>(message.payload.size()),
                                                 message.payload.data(), message.qos, false, nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      mosquitto_log_printf(MOSQ_LOG_WARNING, "twins: cannot publish %s%s%s: %s", message.topic.c_str(),
                           to != nullptr ? " to " : "", to != nullptr ? to : "", mosquitto_strerror(rc));
    }
    plugin.reclaimer.NotePublished();
  }
}

// The wake connection's PUBLISH: the work other threads queued runs now, on the broker thread
// (on 2.1 what it publishes leaves at once, unlike from the tick). Nobody receives it.
int OnWakeMessage(Plugin& plugin, const mosquitto_evt_message& msg) {
  if (kWakeTopic != msg.topic) return MOSQ_ERR_ACL_DENIED;
  plugin.wakes->Add();
  try {
    plugin.broker_queue.Drain();
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: deferred task failed");
  }
  return MOSQ_ERR_ACL_DENIED;
}

// A request for the batch thread (a store shared with other brokers): what its run and its
// reply need, owned, since the broker's message is gone by then.
struct QueuedRequest {
  uint64_t id = 0;
  std::string client_id;
  std::string topic;
  std::string twin;
  std::string payload;
  int qos = 0;
  bool write = false;  // anything but a get
  std::optional<std::string> correlation;
  std::optional<std::string> response_topic;
  metrics::Operation operation = metrics::Operation::kOther;
  Clock::time_point arrived;
  bool exactly_once = false;
  // A QoS 2 write the client made before: answered from memory if the document is still at
  // the version it left (FindResend's check, made on the batch thread).
  std::optional<ResendFilter::Remembered> earlier;
  // The copy of this QoS 2 write that was still in a batch when this one came: its outcome,
  // once it ran, is this one's `earlier`.
  std::shared_ptr<const QueuedRequest> follows;
  std::optional<Reply> reply;  // set before the batch for a reply known already
  bool ran = false;
  bool resent = false;
};

// Broker thread: the reply of a request the batch thread ran, to its connection if it is
// still there.
void Deliver(Plugin& plugin, QueuedRequest& request) {
  const mosquitto* client = nullptr;
  auto found = plugin.in_flight.find(request.id);
  if (found != plugin.in_flight.end()) {
    client = found->second;
    plugin.in_flight.erase(found);
  }
  auto count = plugin.in_flight_by_connection.find(client);
  if (count != plugin.in_flight_by_connection.end() && --count->second == 0) {
    plugin.in_flight_by_connection.erase(count);
  }
  auto pending = plugin.exactly_once_in_flight.find(request.client_id);
  if (pending != plugin.exactly_once_in_flight.end() && pending->second.get() == &request) {
    plugin.exactly_once_in_flight.erase(pending);
  }
  const Reply& reply = *request.reply;
  if (client != nullptr) Answer(plugin, client, request.client_id.c_str(), reply, request.qos, request.correlation);
  if (request.resent && client != nullptr) {
    plugin.resends.Claim(request.client_id, client);
  } else if (request.exactly_once && request.ran && reply.success) {
    // Also when its connection went meanwhile: that is when the client sends it again.
    plugin.resends.Remember(request.client_id, request.twin, request.topic, request.payload, request.correlation,
                            {reply.topic, reply.payload,
                             request.operation == metrics::Operation::kDelete ? 0 : reply.version, false, client});
  }
  plugin.reclaimer.NotePublished();
  plugin.metrics.Request(metrics::Api::kMqtt, request.operation, metrics::OutcomeOf(reply.code),
                         NanosSince(request.arrived, Clock::now()), reply.quota);
}

// Batch thread: runs the request (or finds it a re-send) against the shared store.
void RunQueued(Plugin& plugin, QueuedRequest& request) {
  if (request.reply) return;
  TwinTopic parsed;
  ClassifyTopic(request.topic, &parsed);
  if (request.follows) {  // it ran before this one, in this batch or an earlier one
    const QueuedRequest& first = *request.follows;
    if ((first.ran || first.resent) && first.reply && first.reply->success) {
      request.earlier = ResendFilter::Remembered{
          first.reply->topic, first.reply->payload,
          first.operation == metrics::Operation::kDelete ? 0 : first.reply->version, first.correlation.has_value(),
          nullptr};
    }
  }
  if (request.earlier) {
    bool same = request.earlier->by_correlation;  // else only while the document is as it left it
    if (!same) {
      auto now = plugin.engine->Get(request.twin, parsed.document);
      same = (now.ok() ? now->version : 0) == request.earlier->version;
    }
    if (same) {
      request.reply = Reply{request.earlier->reply_topic, request.earlier->reply_payload, true,
                            request.earlier->version};
      request.resent = true;
      return;
    }
  }
  request.reply = HandleTwinRequest(*plugin.engine, request.twin, request.topic, parsed, request.payload,
                                    {Durability::kAtSync, request.client_id, request.qos}, plugin.DeferredLog());
  if (request.response_topic) request.reply->topic = *request.response_topic;
  request.ran = true;
}

// Broker thread: the same QoS 2 write of the same client, still in flight, that came on
// another connection (on the same connection a repeat is a new request: resend_filter.hpp).
std::shared_ptr<const QueuedRequest> InFlightCopy(const Plugin& plugin, const QueuedRequest& request,
                                                  const mosquitto* connection) {
  auto pending = plugin.exactly_once_in_flight.find(request.client_id);
  if (pending == plugin.exactly_once_in_flight.end()) return nullptr;
  const QueuedRequest& first = *pending->second;
  auto first_connection = plugin.in_flight.find(first.id);
  if (first_connection != plugin.in_flight.end() && first_connection->second == connection) return nullptr;
  if (first.twin != request.twin || first.topic != request.topic || first.payload != request.payload ||
      first.correlation != request.correlation) {
    return nullptr;
  }
  return pending->second;
}

// Hands the request to the batch thread; its reply comes back through the broker queue,
// once its batch committed (a write whose batch failed is answered with the failure).
void QueueRequest(Plugin& plugin, const std::shared_ptr<QueuedRequest>& request, const mosquitto* connection) {
  request->id = ++plugin.next_request_id;
  plugin.in_flight[request->id] = connection;
  ++plugin.in_flight_by_connection[connection];
  TwinTopic parsed;
  ClassifyTopic(request->topic, &parsed);
  BatchHint hint{request->twin, std::string(parsed.document), request->write, request->payload.size()};
  plugin.batches->Submit(
      std::move(hint), [&plugin, request] { RunQueued(plugin, *request); },
      [&plugin, request](const Status& committed) {
        // A batch that did not commit fails each of its requests (a read may have shown one
        // of its writes); a re-send answered from memory stays answered, unless what answered
        // it was a copy still in flight (that copy may have been in this batch).
        if (!request->reply || (!committed.ok() && (!request->resent || request->follows))) {
          const Status why = committed.ok() ? Status::Internal("the request did not run") : committed;
          request->reply = ErrorReply(request->topic, why, plugin.DeferredLog());
          if (request->response_topic) request->reply->topic = *request->response_topic;
        }
        plugin.broker_queue.PushRequired([&plugin, request] { Deliver(plugin, *request); });
      });
}

int OnMessage(int, void* event_data, void* userdata) {
  auto& plugin = *static_cast<Plugin*>(userdata);
  auto* msg = static_cast<mosquitto_evt_message*>(event_data);
  if (plugin.wake && msg->client == plugin.wake->connection()) return OnWakeMessage(plugin, *msg);
  TwinTopic parsed;
  TopicKind kind = ClassifyTopic(msg->topic, &parsed);
  if (kind == TopicKind::kNotTwin) return MOSQ_ERR_SUCCESS;
  // Dropping with ACL_DENIED keeps the request from subscribers and the retained store;
  // an MQTT v5 publisher at QoS >= 1 sees reason code 0x87 in its PUBACK.
  if (kind == TopicKind::kOtherTwin) return MOSQ_ERR_ACL_DENIED;
  WarnIfTickNeverCame(plugin);
  const Clock::time_point arrived = Clock::now();
  const metrics::Operation operation = metrics::OperationOfMethod(parsed.method);
  try {
    const char* client_id = mosquitto_client_id(msg->client);
    if (client_id == nullptr) return MOSQ_ERR_ACL_DENIED;
    std::string_view payload(static_cast<const char*>(msg->payload), msg->payloadlen);
    plugin.reply_owners.Request(client_id, msg->client);
    std::optional<std::string> correlation = CorrelationData(*msg);
    const ResponseTopic response = ResponseTopicOf(*msg);
    if (!response.valid) {
      Publish(client_id,
              ErrorReply(msg->topic,
                         Status::InvalidArgument("response topic",
                                                 "the Response Topic must be a topic name without "
                                                 "wildcards, in UTF-8"),
                         LogNow),
              msg->qos, correlation);
      return MOSQ_ERR_ACL_DENIED;
    }
    // Everything but a get writes (a watch is stored with the twin): made durable before the reply.
    const bool write = parsed.method != "get";
    const bool document_write = parsed.method == "put" || parsed.method == "patch" || parsed.method == "delete";
    // Without group commit, each write is made durable on its own and answered now.
    const Durability durability = plugin.group_commit ? Durability::kAtSync : Durability::kBeforeReturn;
    const Requester requester = RequesterOf(plugin, msg->client);
    NoteRequester(plugin, msg->client, client_id, requester);
    Result<std::string_view> twin = AdmitRequest(*plugin.request_limiter, requester, parsed);
    std::optional<Reply> reply;
    bool ran = false, remembered = false;
    if (!twin.ok()) {
      reply = ErrorReply(msg->topic, twin.status(), LogNow);
      if (response.topic) reply->topic = *response.topic;
    } else if (plugin.batches) {  // a shared store: the request leaves the broker thread
      auto request = std::make_shared<QueuedRequest>();
      request->client_id = client_id;
      request->topic = msg->topic;
      request->twin = std::string(*twin);
      request->payload = std::string(payload);
      request->qos = msg->qos;
      request->write = write;
      request->correlation = std::move(correlation);
      request->response_topic = response.topic;
      request->operation = operation;
      request->arrived = arrived;
      request->exactly_once = msg->qos == 2 && document_write;
      const ResendFilter::Remembered* earlier = request->exactly_once
                                                    ? plugin.resends.Find(client_id, *twin, msg->topic, payload,
                                                                          request->correlation)
                                                    : nullptr;
      if (earlier != nullptr && earlier->connection != msg->client) {
        request->earlier = *earlier;
        if (earlier->by_correlation) {
          request->reply = Reply{earlier->reply_topic, earlier->reply_payload, true, earlier->version};
          request->resent = true;
        }
      } else if (request->exactly_once) {
        request->follows = InFlightCopy(plugin, *request, msg->client);
      }
      QueueRequest(plugin, request, msg->client);
      if (request->exactly_once) plugin.exactly_once_in_flight[request->client_id] = request;
      plugin.metrics.BrokerThread(operation, NanosSince(arrived, Clock::now()));
      return MOSQ_ERR_ACL_DENIED;
    } else {
      const bool exactly_once = msg->qos == 2 && document_write;
      if (exactly_once) reply = FindResend(plugin, client_id, *msg, *twin, parsed, payload, correlation);
      if (!reply) {
        reply = HandleTwinRequest(*plugin.engine, *twin, msg->topic, parsed, payload, {durability, client_id, msg->qos},
                                  LogNow);
        if (response.topic) reply->topic = *response.topic;
        ran = true;
      }
      if (exactly_once && ran && reply->success) {
        plugin.resends.Remember(
            client_id, *twin, msg->topic, payload, correlation,
            {reply->topic, reply->payload, parsed.method == "delete" ? 0 : reply->version, false, msg->client});
        remembered = true;
      }
    }
    const Clock::time_point handled = Clock::now();
    plugin.metrics.BrokerThread(operation, NanosSince(arrived, handled));
    if (plugin.in_flight_by_connection.count(msg->client) != 0) {  // after its earlier requests' replies
      auto request = std::make_shared<QueuedRequest>();
      request->client_id = client_id;
      request->topic = msg->topic;
      request->qos = msg->qos;
      request->correlation = std::move(correlation);
      request->operation = operation;
      request->arrived = arrived;
      request->reply = std::move(*reply);
      QueueRequest(plugin, request, msg->client);
      return MOSQ_ERR_ACL_DENIED;
    }
    if (durability == Durability::kAtSync) {
      plugin.held_replies.push_back({msg->client, client_id, msg->topic, write && ran, std::move(*reply), msg->qos,
                                     std::move(correlation), operation, arrived, remembered, response.topic});
    } else {
      Answer(plugin, msg->client, client_id, *reply, msg->qos, correlation);
      plugin.reclaimer.NotePublished();
      plugin.metrics.Request(metrics::Api::kMqtt, operation, metrics::OutcomeOf(reply->code),
                             NanosSince(arrived, Clock::now()), reply->quota);
      PublishChanges(plugin);  // the write is durable already: its pushes leave with its reply
    }
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: request on %s failed: %s", msg->topic, e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: request on %s failed", msg->topic);
  }
  return MOSQ_ERR_ACL_DENIED;
}

// A connection that goes (also when another connection takes its client id over) gets no
// more replies: they would reach whoever uses that client id next.
int OnDisconnect(int, void* event_data, void* userdata) noexcept try {
  auto& plugin = *static_cast<Plugin*>(userdata);
  const mosquitto* client = static_cast<mosquitto_evt_disconnect*>(event_data)->client;
  auto& held = plugin.held_replies;
  for (auto& reply : held) {
    if (reply.client == client) reply.client = nullptr;
  }
  plugin.gone_this_pass.push_back(client);
  if (plugin.in_flight_by_connection.erase(client) != 0) {
    for (auto& [id, connection] : plugin.in_flight) {
      if (connection == client) connection = nullptr;
    }
  }
  if (plugin.wake && client == plugin.wake->connection()) plugin.wake->SetConnection(nullptr);
  if (const char* id = mosquitto_client_id(client)) {
    plugin.resends.ConnectionGone(id, client);
    plugin.reply_owners.ConnectionGone(id, client);
    auto requesting = plugin.requesting.find(id);
    if (requesting != plugin.requesting.end() && requesting->second.connection == client) {
      plugin.requesting.erase(requesting);
    }
  }
  return MOSQ_ERR_SUCCESS;
} catch (...) {
  return MOSQ_ERR_SUCCESS;
}

int OnAccessCheck(int, void* event_data, void* userdata) noexcept try {
  auto& plugin = *static_cast<Plugin*>(userdata);
  const auto* check = static_cast<mosquitto_evt_acl_check*>(event_data);
  if (plugin.wake && check->client == plugin.wake->connection()) {  // its wake topic, and nothing else
    const bool wake = check->access == MOSQ_ACL_WRITE && !check->retain && check->topic != nullptr &&
                      kWakeTopic == check->topic;
    return wake ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
  }
  AccessKind access = check->access == MOSQ_ACL_READ          ? AccessKind::kRead
                      : check->access == MOSQ_ACL_WRITE       ? AccessKind::kWrite
                      : check->access == MOSQ_ACL_SUBSCRIBE   ? AccessKind::kSubscribe
                      : check->access == MOSQ_ACL_UNSUBSCRIBE ? AccessKind::kUnsubscribe
                                                              : AccessKind::kOther;
  const char* topic = check->topic != nullptr ? check->topic : "";
  if (access == AccessKind::kSubscribe && IsTwinTerritory(topic)) {  // a device listening for its pushes
    if (const char* id = mosquitto_client_id(check->client)) {
      NoteRequester(plugin, check->client, id, RequesterOf(plugin, check->client));
    }
  }
  const char* reader = access == AccessKind::kRead ? mosquitto_client_id(check->client) : nullptr;
  if (reader != nullptr) {
    const size_t length = check->payload != nullptr ? check->payloadlen : 0;
    std::string_view payload(static_cast<const char*>(check->payload), length);
    if (plugin.reply_owners.BelongsToAnother(reader, check->client, topic, payload)) return MOSQ_ERR_ACL_DENIED;
  }
  switch (CheckAccess(topic, access, check->retain, plugin.access.others_decide)) {
    case Verdict::kAllow:
      return MOSQ_ERR_SUCCESS;
    case Verdict::kDefer:
      return MOSQ_ERR_PLUGIN_DEFER;
    case Verdict::kDeny:
      break;
  }
  // A retained request is refused before the plugin sees it: say why, like for bad input,
  // to that connection only (held like any reply, so a connection that goes gets nothing; a
  // retained Will is checked as its connection goes).
  TwinTopic parsed;
  const char* client_id = mosquitto_client_id(check->client);
  const auto& gone = plugin.gone_this_pass;
  if (access == AccessKind::kWrite && check->retain && client_id != nullptr &&
      ClassifyTopic(topic, &parsed) == TopicKind::kMethod &&
      std::find(gone.begin(), gone.end(), check->client) == gone.end()) {
    Reply reply = ErrorReply(
        topic, Status::InvalidArgument("retain", "requests must not be retained (retain flag set)"), LogNow);
    plugin.held_replies.push_back({check->client, client_id, topic, false, std::move(reply), check->qos, std::nullopt,
                                   metrics::OperationOfMethod(parsed.method), Clock::now(), false, std::nullopt});
  }
  return MOSQ_ERR_ACL_DENIED;
} catch (...) {
  return MOSQ_ERR_ACL_DENIED;  // when in doubt, nothing moves under $SCW/twins/ (and elsewhere)
}

// Group commit: one log write for all the writes of the loop pass, then their replies.
void CommitPass(Plugin& plugin) {
  if (plugin.held_replies.empty()) return;
  // A pass of reads only has nothing to sync (with sync_writes, an fsync saved).
  bool wrote = false;
  for (const Plugin::HeldReply& held : plugin.held_replies) wrote = wrote || (held.write && held.reply.success);
  Status synced = wrote ? plugin.engine->Sync() : Status::Ok();
  if (!synced.ok()) {
    // The store logs its stop and its recovery. Reads stay answered: they show what the
    // database holds.
    for (Plugin::HeldReply& held : plugin.held_replies) {
      if (held.write && held.reply.success) {
        held.reply = ErrorReply(held.request_topic, synced, LogNow);
        if (held.response_topic) held.reply.topic = *held.response_topic;
      }
      if (held.remembered) plugin.resends.Forget(held.client_id);
    }
  }
  const Clock::time_point now = Clock::now();
  for (const Plugin::HeldReply& held : plugin.held_replies) {
    if (held.client != nullptr) {
      Answer(plugin, held.client, held.client_id.c_str(), held.reply, held.qos, held.correlation);
    }
    plugin.reclaimer.NotePublished();
    plugin.metrics.Request(metrics::Api::kMqtt, held.operation, metrics::OutcomeOf(held.reply.code),
                           NanosSince(held.arrived, now), held.reply.quota);
  }
  plugin.held_replies.clear();
}

// Where the tick falls in the broker's loop pass decides whether replies may wait for it.
// Mosquitto 2.0 ticks after network handling, just before the pass that sends what plugins
// published: holding replies until the tick costs nothing. Mosquitto 2.1 ticks before network
// handling, then waits in epoll_wait: a reply published by the tick leaves only at the next
// wake-up (up to 100 ms later). The 2.1 tick event (the same change, mosquitto commit 0f2f77c)
// tells the time and takes back the next wake-up (next_ms, where the 2.0 header has an unused
// next_ns); 2.0 sends it zeroed. That capability is read at the first tick, which comes before
// any client can publish.
bool TickRunsBeforeNetwork(const mosquitto_evt_tick& tick) { return tick.now_s != 0 || tick.now_ns != 0; }

// The metrics as retained $SYS/broker/twins/... topics (metrics/sys_topics.hpp), those that
// changed, every sys_interval seconds, as the broker does its own.
void PublishSys(Plugin& plugin) {
  const int interval = plugin.access.sys_interval;
  if (interval <= 0) return;
  const Clock::time_point now = Clock::now();
  if (now < plugin.next_sys_publish) return;
  plugin.next_sys_publish = now + std::chrono::seconds(interval);
  for (const auto& [topic, payload] : plugin.sys_topics.Changed(plugin.metrics.registry())) {
    mosquitto_broker_publish_copy(nullptr, topic.c_str(), static_cast<int>(payload.size()), payload.data(), 0, true,
                                  nullptr);
  }
}

int OnTick(int, void* event_data, void* userdata) {
  auto& plugin = *static_cast<Plugin*>(userdata);
  auto* tick = static_cast<mosquitto_evt_tick*>(event_data);
  if (!plugin.tick_seen) {
    plugin.tick_seen = true;
    if (plugin.wake) plugin.wake->Start();  // the broker listens now
    plugin.group_commit = !TickRunsBeforeNetwork(*tick);
    mosquitto_log_printf(MOSQ_LOG_INFO, "twins: %s",
                         plugin.group_commit
                             ? "the broker ticks after network handling: writes of one loop pass share one log write"
                             : "the broker ticks before network handling: each write is made durable before its "
                               "reply, which is sent at once");
  }
  tick->next_ns = kTickIntervalMs;  // 2.1's next_ms; a 2.0 broker does not read it
  try {
    CommitPass(plugin);
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: replies of this loop pass lost");
    plugin.held_replies.clear();
  }
  plugin.gone_this_pass.clear();
  try {
    plugin.broker_queue.Drain();
    PublishChanges(plugin);  // after the replies of the pass, which the pushes must not overtake
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: deferred task failed");
  }
  plugin.reclaimer.OnTick();
  try {
    PublishSys(plugin);
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cannot publish the $SYS metrics");
  }
  return MOSQ_ERR_SUCCESS;
}

int ReadBrokerAccessSetup(Plugin& plugin);
std::string PluginFile();

// Mosquitto 2.1 and later: a broker-only function 2.0 does not have.
bool BrokerHasPluginIgnore() { return dlsym(RTLD_DEFAULT, "mosquitto_plugin_set_info") != nullptr; }

// After a reload, how the basic-auth callback leaves other clients (a password_file may have
// come). When in doubt, defer: never let a client in that the broker would refuse.
void RereadWakeAuth(Plugin& plugin) {
  if (!plugin.wake) return;
  auto setup = ReadBrokerSetup(RunningBrokerConfigPaths(), PluginFile());
  const bool has_ignore = BrokerHasPluginIgnore();
  plugin.others_auth = setup.ok()   ? WakeAuthFor(*setup, has_ignore)
                       : has_ignore ? OthersAuth::kIgnore
                                    : OthersAuth::kDefer;
}

// Mosquitto 2.0 keeps v5 plugins loaded across a SIGHUP reload and does not call init again.
// The broker has read its configuration again: an acl_file may have come or gone. DEFER, so
// that the broker goes on to reload the plugins after this one.
int OnReload(int, void*, void* userdata) noexcept try {
  auto& plugin = *static_cast<Plugin*>(userdata);
  const AccessSetup before = plugin.access;
  if (ReadBrokerAccessSetup(plugin) != MOSQ_ERR_SUCCESS) {
    plugin.access = before;
    plugin.access.others_decide = true;  // when in doubt, leave the rest to the other checkers
  }
  RereadWakeAuth(plugin);
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: configuration reloaded; plugin_opt_* changes apply at the next restart");
  return MOSQ_ERR_PLUGIN_DEFER;
} catch (...) {
  return MOSQ_ERR_PLUGIN_DEFER;
}

void LogEffectiveOptions(const PluginOptions& o) {
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: mosquitto-twins %s, database %s (sync_writes %s, cache %zu MiB)",
                       TWINS_VERSION, o.store.path.c_str(), o.store.sync_writes ? "true" : "false",
                       o.store.cache_bytes >> 20);
  mosquitto_log_printf(
      MOSQ_LOG_INFO,
      "twins: limits: %zu bytes per document, depth %d, %zu documents per twin, %zu bytes per _config, "
      "%zu series per twin",
      o.limits.max_document_bytes, o.limits.max_depth, o.limits.max_documents, o.limits.max_config_bytes,
      o.max_series_per_twin);
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: twins named by %s; %u requests a second per twin (burst %u)",
                       o.twin_identity == TwinIdentity::kUsername ? "username" : "client id", o.max_requests_per_second,
                       o.request_burst);
  const std::string twins = o.limits.max_twins == 0 ? "unlimited" : "at most " + std::to_string(o.limits.max_twins);
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: disk: %s twins, writes that add data refused below %llu MiB free",
                       twins.c_str(), static_cast<unsigned long long>(o.store.min_free_bytes >> 20));
}

// Time series are optional: no graphite_url, no observer, no cost on writes.
int StartGraphite(Plugin& plugin) {
  const PluginOptions& o = plugin.options;
  if (o.graphite_url.empty()) return MOSQ_ERR_SUCCESS;
  GraphiteOptions graphite;
  graphite.url = o.graphite_url;
  graphite.queue_capacity = o.graphite_queue;
  graphite.log = plugin.DeferredLog();
  auto sender = GraphiteSender::Create(graphite);
  if (!sender.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: plugin_opt_graphite_url: %s", sender.status().message().c_str());
    return MOSQ_ERR_INVAL;
  }
  plugin.graphite = std::move(sender).value();
  plugin.held_samples = std::make_unique<DurableSamples>(*plugin.graphite);
  plugin.tsdb = std::make_unique<TsdbObserver>(*plugin.held_samples, o.max_series_per_twin, plugin.DeferredLog());
  plugin.engine->AddObserver(plugin.tsdb.get());
  plugin.engine->AddObserver(plugin.held_samples.get());
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: pushing time series to %s", plugin.graphite->target().c_str());
  return MOSQ_ERR_SUCCESS;
}

// This plugin's own file, as the dynamic loader opened it.
std::string PluginFile() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&PluginFile), &info) == 0 || info.dli_fname == nullptr) return {};
  return info.dli_fname;
}

// The OpenSSL 3 compatibility libraries live in mosquitto_twins/ beside this plugin file.
std::string TlsCompatDir() {
  std::string path = PluginFile();
  if (path.empty()) return ".";
  return path.substr(0, path.find_last_of('/') + 1) + "mosquitto_twins";
}

// Whether an acl_file or another plugin decides what the twin rules leave open.
// Whether an acl_file or another plugin decides what the twin rules leave open, from the
// broker's configuration files (read again on a reload) unless the admin said.
int ReadBrokerAccessSetup(Plugin& plugin) {
  AccessSetup setup;
  std::vector<std::string> config = RunningBrokerConfigPaths();
  if (!config.empty()) {  // none: built-in defaults, no other access checks
    auto read = ReadAccessSetup(config, PluginFile());
    if (!read.ok()) {
      mosquitto_log_printf(MOSQ_LOG_ERR,
                           "twins: %s (read to know which access checks the broker runs; set "
                           "plugin_opt_other_access_checks yes or no to say it instead)",
                           read.status().message().c_str());
      return MOSQ_ERR_INVAL;
    }
    setup = std::move(read).value();
  }
  const std::string& before = setup.plugin_before_us;
  if (before.find("dynamic_security") != std::string::npos || before.find("dynamic-security") != std::string::npos) {
    mosquitto_log_printf(MOSQ_LOG_ERR,
                         "twins: %s is loaded before mosquitto_twins: it would let subscribers read forged twin "
                         "replies; put the mosquitto_twins plugin line before it",
                         before.c_str());
    return MOSQ_ERR_INVAL;
  }
  if (!before.empty()) {
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "twins: %s is loaded before mosquitto_twins: if it is a version 5 plugin that checks "
                         "access, clients may forge twin replies through it; put the mosquitto_twins plugin line first",
                         before.c_str());
  }
  switch (plugin.options.other_access_checks) {
    case OtherAccessChecks::kYes:
      setup.others_decide = true;
      setup.decided_by = "plugin_opt_other_access_checks yes";
      break;
    case OtherAccessChecks::kNo:
      setup.others_decide = false;
      break;
    case OtherAccessChecks::kAuto:
      break;
  }
  if (setup.others_decide) {
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "twins: topics outside $SCW/twins/ are left to the broker's other access checks (%s); if "
                         "none of them checks access, set plugin_opt_other_access_checks no",
                         setup.decided_by.c_str());
  }
  plugin.access = std::move(setup);
  return MOSQ_ERR_SUCCESS;
}

int StartRest(Plugin& plugin) {
  const PluginOptions& o = plugin.options;
  if (o.rest_listen == "off") return MOSQ_ERR_SUCCESS;
  RestOptions rest;
  rest.listen = o.rest_listen;
  rest.threads = o.rest_threads;
  rest.region = o.rest_region;
  rest.tls_cert = o.rest_tls_cert;
  rest.tls_compat_dir = TlsCompatDir();
  rest.tokens = o.rest_tokens;
  rest.allow_anonymous = o.rest_allow_anonymous;
  rest.writes_per_second = o.max_requests_per_second;
  rest.write_burst = o.request_burst;
  rest.metrics = &plugin.metrics;
  rest.metrics_allow_anonymous = o.metrics_allow_anonymous;
  rest.request_timeout_ms = o.rest_request_timeout_ms;
  rest.auth_failures = o.rest_auth_failures;
  rest.cors_origins = o.rest_cors_origins;
  rest.max_streams = o.rest_max_streams;
  rest.stream_max_lag = o.rest_stream_max_lag;
  if (plugin.graphite) rest.graphite_reachable = [sender = plugin.graphite.get()] { return sender->reachable(); };
  if (!o.rest_tokens_file.empty()) {
    auto tokens = ReadTokensFile(o.rest_tokens_file);
    if (!tokens.ok()) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "twins: plugin_opt_rest_tokens_file: %s", tokens.status().message().c_str());
      return MOSQ_ERR_INVAL;
    }
    rest.tokens.insert(rest.tokens.end(), tokens->begin(), tokens->end());
  }
  // An admin adding only the plugin line gets MQTT twins and a clear word on REST, not a
  // broker that refuses to start.
  if (rest.tokens.empty() && !rest.allow_anonymous) {
    mosquitto_log_printf(MOSQ_LOG_WARNING,
                         "twins: REST API not started: no plugin_opt_rest_token or plugin_opt_rest_tokens_file "
                         "(set plugin_opt_rest_allow_anonymous true to serve it without authentication, or "
                         "plugin_opt_rest_listen off to silence this)");
    return MOSQ_ERR_SUCCESS;
  }
  auto server = RestServer::Start(rest, *plugin.engine, plugin.DeferredLog());
  if (!server.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: REST API: %s", server.status().message().c_str());
    return MOSQ_ERR_INVAL;
  }
  plugin.rest = std::move(server).value();
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: REST API on %s (port %d, region %s, %zu token(s)%s)",
                       o.rest_listen.c_str(), plugin.rest->port(), o.rest_region.c_str(), rest.tokens.size(),
                       rest.tokens.empty() ? ", anonymous" : "");
  return MOSQ_ERR_SUCCESS;
}

// The wake connection gets in with its secret; an impostor of its client id or username is
// refused (it would take the connection over); every other client is left as before (WakeAuthFor).
int OnBasicAuth(int, void* event_data, void* userdata) noexcept try {
  auto& plugin = *static_cast<Plugin*>(userdata);
  auto* auth = static_cast<mosquitto_evt_basic_auth*>(event_data);
  switch (plugin.wake->Check(mosquitto_client_id(auth->client), auth->username, auth->password)) {
    case WakeCredentials::kWake:
      plugin.wake->SetConnection(auth->client);
      return MOSQ_ERR_SUCCESS;
    case WakeCredentials::kImpostor:
      return MOSQ_ERR_AUTH;
    case WakeCredentials::kOther:
      break;
  }
  constexpr int kPluginIgnore = 32;  // Mosquitto 2.1's MOSQ_ERR_PLUGIN_IGNORE
  return plugin.others_auth == OthersAuth::kIgnore  ? kPluginIgnore
         : plugin.others_auth == OthersAuth::kAllow ? MOSQ_ERR_SUCCESS
                                                    : MOSQ_ERR_PLUGIN_DEFER;
} catch (...) {
  return MOSQ_ERR_PLUGIN_DEFER;
}

// The broker wake (broker_wake.hpp), from plugin_opt_wake_address or the broker's listeners;
// before anything can queue work for the broker thread.
int SetUpWake(Plugin& plugin) {
  auto& registry = plugin.metrics.registry();
  plugin.wakes = &registry.AddCounter("twins_broker_wakes_total",
                                      "Wake-ups of the broker thread for work queued by other threads");
  metrics::Gauge& connected = registry.AddGauge("twins_broker_wake_connected", "1 while the wake connection is up");
  const std::string& address = plugin.options.wake_address;
  WakeTarget target;
  bool off = false;
  if (!address.empty() && !ParseWakeAddress(address, &target, &off).ok()) return MOSQ_ERR_INVAL;
  if (off) return MOSQ_ERR_SUCCESS;
  auto setup = ReadBrokerSetup(RunningBrokerConfigPaths(), PluginFile());
  if (!setup.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: %s", setup.status().message().c_str());
    return MOSQ_ERR_INVAL;
  }
  if (address.empty()) {
    auto chosen = ChooseWakeTarget(*setup);
    if (!chosen.ok()) {
      mosquitto_log_printf(MOSQ_LOG_WARNING,
                           "twins: broker wake off: %s; work from REST and other threads waits for the broker's tick "
                           "(up to 100 ms). Add a plain listener, e.g. `listener 1884 127.0.0.1`, or set "
                           "plugin_opt_wake_address",
                           chosen.status().message().c_str());
      return MOSQ_ERR_SUCCESS;
    }
    target = std::move(chosen).value();
  }
  plugin.others_auth = WakeAuthFor(*setup, BrokerHasPluginIgnore());
  plugin.wake = std::make_unique<BrokerWake>(target, plugin.DeferredLog(),
                                             [&connected](bool up) { connected.Set(up ? 1 : 0); });
  int rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr, &plugin);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cannot register the wake's authentication: %s", mosquitto_strerror(rc));
    return rc;
  }
  plugin.broker_queue.SetWaker([wake = plugin.wake.get()] { wake->Request(); });
  mosquitto_log_printf(MOSQ_LOG_INFO, "twins: broker wake: connecting to %s once the broker listens",
                       target.Describe().c_str());
  return MOSQ_ERR_SUCCESS;
}

// With a shared store: how the batch thread keeps up.
void DeclareBatchMetrics(metrics::Registry& registry, const BatchThread& batches) {
  using metrics::Type;
  registry.AddCallback("twins_store_batches_total", "Transactions of the shared store (one per batch of requests)",
                       Type::kCounter, {}, [&batches] { return static_cast<double>(batches.batches()); });
  registry.AddCallback("twins_store_batch_calls_total", "Requests run in the shared store's batches", Type::kCounter,
                       {}, [&batches] { return static_cast<double>(batches.calls()); });
  registry.AddCallback("twins_store_batches_failed_total",
                       "Batches that did not commit (PostgreSQL unavailable or not answering)", Type::kCounter, {},
                       [&batches] { return static_cast<double>(batches.failed()); });
  registry.AddCallback("twins_store_batch_queued", "Requests waiting for the next batch", Type::kGauge, {},
                       [&batches] { return static_cast<double>(batches.queued()); });
}

// The engine over its store: RocksDB at db_path, or PostgreSQL shared with other brokers.
int OpenStore(Plugin& plugin) {
  const PluginOptions& o = plugin.options;
  if (!o.postgres.uri.empty()) {
    if (o.limits.max_twins > 0) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "twins: plugin_opt_max_twins is not supported with plugin_opt_store yet");
      return MOSQ_ERR_INVAL;
    }
    PostgresOptions postgres = o.postgres;
    postgres.changelog_bytes = o.store.changelog_bytes;
    postgres.log = plugin.DeferredLog();
    Status deferred;
    auto store = OpenSharedPostgresStoreOrLater(postgres, &deferred);
    if (!store.ok()) {
      mosquitto_log_printf(MOSQ_LOG_ERR, "twins: plugin_opt_store: %s", store.status().message().c_str());
      return MOSQ_ERR_UNKNOWN;
    }
    if (!deferred.ok()) {  // the broker runs; its batches open the store once it answers
      mosquitto_log_printf(MOSQ_LOG_ERR,
                           "twins: plugin_opt_store: %s; the broker runs, twin requests fail until PostgreSQL is "
                           "reachable",
                           deferred.message().c_str());
    }
    SharedPostgresStore& shared = **store;
    plugin.engine = std::make_unique<Engine>(std::move(store).value(), o.limits);
    plugin.batches = std::make_unique<BatchThread>(*plugin.engine, shared,
                                                   std::chrono::milliseconds(postgres.timeout_ms));
    plugin.engine->SetBatchRunner(plugin.batches.get());
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "twins: twins shared through PostgreSQL (schema %s), requests answered once "
                         "their batch committed",
                         postgres.schema.c_str());
    return MOSQ_ERR_SUCCESS;
  }
  // plugin_opt_cache_mb bounds the store's memory: a quarter holds recent documents' text
  // (the write-behind cache in front of RocksDB), the rest RocksDB's block cache and buffers.
  RocksDbOptions store_options = o.store;
  store_options.log = plugin.DeferredLog();  // RocksDB calls it from its own threads too
  const size_t document_cache_bytes = store_options.cache_bytes / 4;
  store_options.cache_bytes -= document_cache_bytes;
  auto store = OpenRocksDbStore(store_options);
  if (!store.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: %s", store.status().message().c_str());
    return MOSQ_ERR_UNKNOWN;
  }
  plugin.engine = std::make_unique<Engine>(WithWriteBehindCache(std::move(store).value(), document_cache_bytes),
                                           o.limits);
  return MOSQ_ERR_SUCCESS;
}

// Unregistering a callback that was never registered is harmless.
void UnregisterAll(Plugin& plugin) {
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_MESSAGE, OnMessage, nullptr);
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_TICK, OnTick, nullptr);
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_RELOAD, OnReload, nullptr);
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr);
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_ACL_CHECK, OnAccessCheck, nullptr);
  mosquitto_callback_unregister(plugin.id, MOSQ_EVT_BASIC_AUTH, OnBasicAuth, nullptr);
}

int Init(Plugin& plugin, mosquitto_opt* opts, int opt_count) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < opt_count; ++i) pairs.emplace_back(opts[i].key, opts[i].value ? opts[i].value : "");
  auto options = ParseOptions(pairs);
  if (!options.ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: %s", options.status().message().c_str());
    return MOSQ_ERR_INVAL;
  }
  plugin.options = std::move(options).value();
  LogEffectiveOptions(plugin.options);
  int rc = ReadBrokerAccessSetup(plugin);
  if (rc != MOSQ_ERR_SUCCESS) return rc;
  // First of all: no twin traffic may be forged from the moment clients can connect.
  rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_ACL_CHECK, OnAccessCheck, nullptr, &plugin);
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cannot register the access check: %s", mosquitto_strerror(rc));
    return rc;
  }
  rc = SetUpWake(plugin);
  if (rc != MOSQ_ERR_SUCCESS) return rc;
  plugin.request_limiter = std::make_unique<RateLimiter>(plugin.options.max_requests_per_second,
                                                         plugin.options.request_burst);
  if (!plugin.reclaimer.available()) {
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "twins: this broker does not export db__msg_store_compact: replies it drops for clients "
                         "that do not read stay in its memory (a Mosquitto bug); max_queued_messages and the "
                         "request rate limit bound how fast");
  }

  rc = OpenStore(plugin);
  if (rc != MOSQ_ERR_SUCCESS) return rc;
  if (!plugin.engine->start_status().ok()) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: %s", plugin.engine->start_status().message().c_str());
    return MOSQ_ERR_UNKNOWN;
  }
  if (plugin.options.limits.max_twins > 0) {
    mosquitto_log_printf(MOSQ_LOG_INFO, "twins: %llu twins of at most %zu",
                         static_cast<unsigned long long>(plugin.engine->twins()), plugin.options.limits.max_twins);
  }

  // Pushes never overtake a reply held for this loop pass (a watch's reply is the device's
  // starting point; a write's reply shows the version a later push must follow): with replies
  // held, the tick publishes the changes after them.
  plugin.pusher = std::make_unique<ChangePusher>(*plugin.engine, plugin.options.events_topic, [&plugin] {
    plugin.broker_queue.Push([&plugin] {
      if (plugin.held_replies.empty()) PublishChanges(plugin);
    });
  });
  plugin.engine->AddObserver(plugin.pusher.get());
  plugin.contents = std::make_unique<ContentCounter>(*plugin.engine, kContentCountInterval);
  rc = StartGraphite(plugin);
  if (rc != MOSQ_ERR_SUCCESS) return rc;
  if (plugin.batches) plugin.batches->Start();  // once every observer is in place
  DeclareSourceMetrics(plugin.metrics, *plugin.engine, *plugin.contents, plugin.graphite.get());
  plugin.metrics.registry().AddCallback(
      "twins_broker_queue_dropped_total",
      "Work for the broker thread refused because its queue was full (log lines; pushes go at the next tick)",
      metrics::Type::kCounter, {}, [&plugin] { return static_cast<double>(plugin.broker_queue.dropped()); });
  plugin.metrics.registry().AddCallback(
      "twins_pushes_dropped_total", "Changes not pushed because too many waited for the broker thread",
      metrics::Type::kCounter, {}, [&plugin] { return static_cast<double>(plugin.pusher->dropped()); });
  if (plugin.batches) DeclareBatchMetrics(plugin.metrics.registry(), *plugin.batches);
  rc = StartRest(plugin);
  if (rc != MOSQ_ERR_SUCCESS) return rc;
  rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_MESSAGE, OnMessage, nullptr, &plugin);
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_TICK, OnTick, nullptr, &plugin);
  if (rc == MOSQ_ERR_SUCCESS) rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_RELOAD, OnReload, nullptr, &plugin);
  if (rc == MOSQ_ERR_SUCCESS) {
    rc = mosquitto_callback_register(plugin.id, MOSQ_EVT_DISCONNECT, OnDisconnect, nullptr, &plugin);
  }
  if (rc != MOSQ_ERR_SUCCESS) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cannot register callbacks: %s", mosquitto_strerror(rc));
  }
  return rc;
}

}  // namespace
}  // namespace twins

extern "C" {

int mosquitto_plugin_version(int supported_version_count, const int* supported_versions) {
  for (int i = 0; i < supported_version_count; ++i) {
    if (supported_versions[i] == 5) return 5;
  }
  return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t* identifier, void** userdata, mosquitto_opt* opts, int opt_count) {
  try {
    auto plugin = std::make_unique<twins::Plugin>();
    plugin->id = identifier;
    int rc = twins::Init(*plugin, opts, opt_count);
    if (rc != MOSQ_ERR_SUCCESS) {
      twins::UnregisterAll(*plugin);  // no callback may outlive the context it was given
      return rc;
    }
    *userdata = plugin.release();
    return MOSQ_ERR_SUCCESS;
  } catch (const std::exception& e) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: initialisation failed: %s", e.what());
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: initialisation failed");
  }
  return MOSQ_ERR_UNKNOWN;
}

int mosquitto_plugin_cleanup(void* userdata, mosquitto_opt*, int) {
  try {
    auto* plugin = static_cast<twins::Plugin*>(userdata);
    if (plugin == nullptr) return MOSQ_ERR_SUCCESS;
    twins::UnregisterAll(*plugin);
    if (plugin->wake) plugin->wake->Stop();  // the broker closed its connection: no reconnecting
    // Stops REST, makes the last writes durable, hands their samples to the Graphite sender
    // (which flushes briefly), then closes the database.
    plugin->rest.reset();
    plugin->batches.reset();  // its last batch ends; calls still queued fail
    plugin->engine->SetBatchRunner(nullptr);
    if (!plugin->engine->Sync().ok()) mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cannot write the database log");
    plugin->contents.reset();
    plugin->engine.reset();
    plugin->tsdb.reset();
    plugin->held_samples.reset();
    plugin->graphite.reset();
    plugin->pusher.reset();
    plugin->broker_queue.Drain();  // the last deferred log lines
    delete plugin;
    mosquitto_log_printf(MOSQ_LOG_INFO, "twins: stopped, database closed");
  } catch (...) {
    mosquitto_log_printf(MOSQ_LOG_ERR, "twins: cleanup failed");
  }
  return MOSQ_ERR_SUCCESS;
}

}  // extern "C"
