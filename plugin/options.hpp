// plugin_opt_* settings: defaults first, then strict parsing. Every key is documented in
// mosquitto.conf.example.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "store/document_store.hpp"
#include "store/postgres_store.hpp"
#include "engine/engine.hpp"
#include "common/status.hpp"

namespace twins {

inline RocksDbOptions DefaultStore() {
  RocksDbOptions store;
  store.path = "/var/lib/mosquitto/twins";
  store.min_free_bytes = uint64_t{256} << 20;
  return store;
}

// What names a device's twin: its MQTT client id (any client may choose any id, so only
// safe when the broker authenticates client ids), or its authenticated username (or the
// certificate's CN with use_identity_as_username).
enum class TwinIdentity { kClientId, kUsername };

// Whether other access checkers (an acl_file, plugins) decide topics outside $SCW/twins/:
// read from the broker's configuration files, or said by the admin (a plugin that checks no
// access, a configuration the plugin cannot read).
enum class OtherAccessChecks { kAuto, kYes, kNo };

struct PluginOptions {
  RocksDbOptions store = DefaultStore();
  // plugin_opt_store: a postgresql:// URI to share twins with other brokers; empty: RocksDB.
  PostgresOptions postgres;
  Limits limits;
  TwinIdentity twin_identity = TwinIdentity::kClientId;
  OtherAccessChecks other_access_checks = OtherAccessChecks::kAuto;
  uint32_t max_requests_per_second = 100;  // per twin, MQTT requests and REST writes; 0: unlimited
  uint32_t request_burst = 200;            // requests a quiet twin may make at once

  std::string rest_listen = "127.0.0.1:8080";  // "off" disables the REST API
  int rest_threads = 64;                       // each idle or slow client holds one while it lasts
  int rest_request_timeout_ms = 10000;         // deadline of a request's headers and of each body read
  uint32_t rest_auth_failures = 10;            // failed tokens one address may send before refusals; 0: never
  std::vector<std::string> rest_cors_origins;  // origins allowed cross-origin access; none by default
  int rest_max_streams = 16;                   // event streams at once, each with a thread on top of rest_threads
  uint64_t rest_stream_max_lag = 10000;        // changes a stream may fall behind before it is ended
  std::string rest_region = "fr-par";
  std::string rest_tls_cert;
  std::vector<std::string> rest_tokens;  // rest_token and the lines of rest_tokens_file
  std::string rest_tokens_file;
  bool rest_allow_anonymous = false;
  bool metrics_allow_anonymous = false;  // GET /metrics without a token

  // Every change also published to <events_topic>/<twin_id>/<document>; empty: no feed.
  std::string events_topic;

  // The broker wake (broker_wake.hpp): empty to use the first plain listener of the broker's
  // configuration, host:port or a Unix socket path to say which, "off" to wait for the tick.
  std::string wake_address;

  std::string graphite_url;           // empty: no time-series push
  size_t graphite_queue = 100000;     // points held while Graphite is unreachable
  size_t max_series_per_twin = 1000;  // distinct series one twin may feed
};

// Parses (key, value) pairs, keys without the "plugin_opt_" prefix. An unknown key or a bad
// value fails, and the message names the option.
Result<PluginOptions> ParseOptions(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace twins
