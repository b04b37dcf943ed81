// The REST API of the twins, the Scaleway IoT v1 twin endpoints (rest/openapi.yaml), served by
// CivetWeb over a shared Engine:
//
//   GET|DELETE                  /iot/v1/regions/{region}/twins/{twin_id}
//   GET|PUT|PATCH|DELETE        /iot/v1/regions/{region}/twins/{twin_id}/documents/{document_name}
//   GET                         /iot/v1/regions/{region}/twin-events (server-sent events, event_stream.hpp)
//   GET (no token)              /healthz, /iot/v1/openapi.yaml
//
// Every other request needs an X-Auth-Token (or Authorization: Bearer) header equal to one of
// the configured tokens. Failed tokens are counted and logged per source address, and an
// address that keeps failing is refused for a while (auth_guard.hpp). Listed CORS origins get
// preflight answers and Access-Control-* headers (cors.hpp).
//
// Slow and idle clients: each connection holds a worker thread while CivetWeb reads its
// request, at most request_timeout_ms for the headers (whatever the pace), keep-alive
// connections at most keep_alive_timeout_ms between requests. With the default 64 threads,
// 32 connections that send nothing or trickle headers leave at least 32 threads to others.
// Event streams have max_streams threads of their own on top of those.
//
// Thread-safety: handlers run on CivetWeb worker threads and call the engine and the LogFn
// from there; they never call into the broker. Start and the destructor must not race with
// each other on the same object, but several servers may run in one process.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "common/log.hpp"
#include "common/status.hpp"
#include "metrics/twins_metrics.hpp"

namespace twins {

struct RestOptions {
  std::string listen = "127.0.0.1:8080";  // CivetWeb listening_ports syntax; a port ending in 's' is TLS
  int threads = 64;                       // CivetWeb serves one connection per thread at a time
  int request_timeout_ms = 10000;         // a request's headers (and each body read) must come within it
  int keep_alive_timeout_ms = 500;        // how long an idle kept-alive connection keeps its thread
  std::string region = "fr-par";          // other regions are 404
  std::string tls_cert;                   // PEM certificate + private key; needs an 's' port
  std::string tls_compat_dir;             // folder of the OpenSSL 3 compatibility libraries (TLS only)
  std::vector<std::string> tokens;        // accepted X-Auth-Token secrets
  bool allow_anonymous = false;           // with no token at all, serve without authentication
  uint32_t writes_per_second = 0;         // per twin (put, patch, delete); 0: unlimited
  uint32_t write_burst = 0;               // writes a quiet twin may make at once
  // Counts the requests and serves GET /metrics (metrics_endpoint.hpp); must outlive the server.
  metrics::TwinsMetrics* metrics = nullptr;
  bool metrics_allow_anonymous = false;      // /metrics without a token
  uint32_t auth_failures = 10;               // failures one address may make before refusals; 0: never refused
  std::vector<std::string> cors_origins;     // exact Origin values allowed cross-origin access
  std::function<bool()> graphite_reachable;  // shown by /healthz; empty: no Graphite configured
  int max_streams = 16;                      // event streams open at once, each with a thread of its own
  uint64_t stream_max_lag = 10000;           // changes a stream may fall behind before it is ended
  // Longest silence on an event stream before a comment line. Not an admin setting: tests lower it.
  int stream_keep_alive_ms = 15000;
};

class RestServer {
 public:
  // Checks the options and starts listening. Fails (port in use, bad option, no token
  // without allow_anonymous, TLS unavailable) with a message meant for the broker log.
  // `engine` must outlive the server; `log` may be called from CivetWeb threads.
  static Result<std::unique_ptr<RestServer>> Start(const RestOptions& options, Engine& engine, LogFn log);

  // Ends the event streams, stops accepting, waits for the requests in flight, then releases
  // the port.
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // The first bound port (the real one when listen asked for port 0).
  int port() const;

 private:
  struct Impl;
  explicit RestServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace twins
