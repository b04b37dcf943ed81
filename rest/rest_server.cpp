// CivetWeb lifecycle: options, start and stop, and the callbacks, each of which catches
// everything (no exception may unwind into CivetWeb's C code).
#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "rest/civet_exchange.hpp"
#include "rest/errors.hpp"
#include "rest/event_stream.hpp"
#include "engine/json.hpp"
#include "rest/metrics_endpoint.hpp"
#include "rest/openssl3_compat.hpp"
#include "rest/rest_server.hpp"
#include "rest/router.hpp"

namespace twins {
namespace {

void SafeLog(const LogFn& log, LogLevel level, const std::string& message) noexcept {
  try {
    if (log) log(level, message);
  } catch (...) {
    // A failing logger must not take the worker thread down with it.
  }
}

// A request whose handling threw (`what`, or null for an unknown exception): answered like any
// internal error, or with the last-resort reply if even that cannot be built.
void AnswerFailedRequest(mg_connection* conn, const LogFn& log, const char* what) noexcept {
  try {
    const std::string detail = what != nullptr ? std::string("REST: request failed: ") + what
                                               : std::string("REST: request failed with an unknown exception");
    const LogFn safe_log = [&log](LogLevel level, const std::string& message) { SafeLog(log, level, message); };
    SendResponse(conn, InternalError(safe_log, detail), nullptr, AfterReply::kClose);
  } catch (...) {
    SendInternalError(conn);
  }
}

bool HasTlsPort(std::string_view listen) {
  while (!listen.empty()) {
    size_t comma = listen.find(',');
    std::string_view port = listen.substr(0, comma);
    while (!port.empty() && port.back() == ' ') port.remove_suffix(1);
    if (!port.empty() && port.back() == 's') return true;
    if (comma == std::string_view::npos) break;
    listen.remove_prefix(comma + 1);
  }
  return false;
}

Status CheckOptions(const RestOptions& options) {
  if (options.listen.empty()) return Status::InvalidArgument("listen", "the REST listening address is empty");
  if (options.threads < 1 || options.threads > 1024) {
    return Status::InvalidArgument("threads", "REST threads must be between 1 and 1024");
  }
  if (options.max_streams < 1 || options.max_streams > 1024) {
    return Status::InvalidArgument("max_streams", "REST max streams must be between 1 and 1024");
  }
  if (options.stream_max_lag < 1 || options.stream_keep_alive_ms < 1) {
    return Status::InvalidArgument("stream_max_lag", "the event stream lag and keep-alive must be positive");
  }
  if (options.request_timeout_ms < 1 || options.keep_alive_timeout_ms < 0) {
    return Status::InvalidArgument("request_timeout_ms", "REST timeouts must be positive");
  }
  for (const std::string& origin : options.cors_origins) {
    if (origin.empty() || origin.find_first_of(" ,\t\r\n") != std::string::npos || origin.back() == '/' ||
        origin.find("://") == std::string::npos) {
      return Status::InvalidArgument("cors_origins",
                                     "a CORS origin must be scheme://host[:port] without a path, "
                                     "e.g. https://app.example.com; got '" +
                                         origin + "'");
    }
  }
  if (options.region.empty() || options.region.find('/') != std::string::npos) {
    return Status::InvalidArgument("region", "the REST region must be a non-empty name without '/'");
  }
  for (const std::string& token : options.tokens) {
    if (token.empty()) return Status::InvalidArgument("tokens", "a REST token is empty");
    for (char c : token) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return Status::InvalidArgument("tokens", "a REST token contains a control character");
      }
    }
  }
  if (options.tokens.empty() && !options.allow_anonymous) {
    return Status::InvalidArgument("tokens",
                                   "the REST API refuses to start without a token: configure at least one "
                                   "token, or allow anonymous access explicitly");
  }
  const bool tls_port = HasTlsPort(options.listen);
  if (!options.tls_cert.empty() && !tls_port) {
    return Status::InvalidArgument("tls_cert",
                                   "a TLS certificate is configured but no REST listening port ends in "
                                   "'s' (e.g. 127.0.0.1:8443s), so it would never be used");
  }
  if (options.tls_cert.empty() && tls_port) {
    return Status::InvalidArgument("tls_cert",
                                   "a REST listening port ends in 's' (TLS) but no certificate is "
                                   "configured");
  }
  return Status::Ok();
}

// A connection to the port, closed at once. CivetWeb's accept loop only looks at its stop
// flag between polls of up to 2 s; a connection ends the poll, so mg_stop returns promptly.
void PokeLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in address;
  std::memset(&address, 0, sizeof(address));
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  (void)connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  close(fd);
}

// `wake` ends what handlers wait for (the event streams' waits), again until they are all gone.
void StopCivetWeb(mg_context* context, const std::vector<int>& ports, const std::function<void()>& wake) noexcept {
  std::atomic<bool> stopped{false};
  std::thread waker;
  try {
    waker = std::thread([&] {
      while (!stopped.load()) {
        wake();
        for (int port : ports) PokeLoopback(port);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    });
  } catch (...) {
    // No thread: mg_stop still returns, only later.
  }
  mg_stop(context);
  stopped = true;
  if (waker.joinable()) waker.join();
}

// mg_init_library counts its callers but its first call is not thread-safe.
std::mutex& LibraryMutex() {
  static std::mutex mutex;
  return mutex;
}

}  // namespace

struct RestServer::Impl {
  Impl(const RestOptions& options, Engine& engine_ref, LogFn log_fn)
      : engine(engine_ref),
        log(std::move(log_fn)),
        write_limiter(options.writes_per_second, options.write_burst),
        auth_guard(options.auth_failures, kAuthGuardPeers, log),
        events(engine, StreamOptions(options), options.metrics, log),
        router(engine, options, write_limiter, auth_guard, events, log),
        max_request_bytes(engine.limits().max_request_bytes()),
        metrics(options.metrics) {}

  ~Impl() {
    events.Stop();
    if (context != nullptr) StopCivetWeb(context, ipv4_ports, [this] { engine.WakeWaiters(); });
    if (library_started) {
      std::lock_guard<std::mutex> lock(LibraryMutex());
      mg_exit_library();
    }
  }

  static int BeginRequest(mg_connection* conn) noexcept;
  static int HttpError(mg_connection* conn, int status, const char* message) noexcept;
  static int LogMessage(const mg_connection* conn, const char* message) noexcept;

  static constexpr size_t kAuthGuardPeers = 4096;

  static EventStreamOptions StreamOptions(const RestOptions& options) {
    EventStreamOptions streams;
    streams.max_streams = options.max_streams;
    streams.max_lag = options.stream_max_lag;
    streams.keep_alive = std::chrono::milliseconds(options.stream_keep_alive_ms);
    return streams;
  }

  Engine& engine;
  const LogFn log;
  RateLimiter write_limiter;
  AuthGuard auth_guard;
  EventStreams events;
  const Router router;
  const size_t max_request_bytes;
  metrics::TwinsMetrics* const metrics;
  bool library_started = false;
  mg_context* context = nullptr;
  int port = 0;
  std::vector<int> ipv4_ports;

  // While mg_start2 runs, CivetWeb's messages are kept: its error text only says "Failed to
  // setup server ports", the reason (address in use, bad port spec) comes through the log.
  std::mutex startup_mutex;
  bool starting = true;
  std::vector<std::string> startup_messages;
};

int RestServer::Impl::BeginRequest(mg_connection* conn) noexcept {
  auto* impl = static_cast<Impl*>(mg_get_user_data(mg_get_context(conn)));
  try {
    const auto start = std::chrono::steady_clock::now();
    CivetRequest request(conn);
    HttpResponse response = impl->router.Handle(request);
    // An unread body is discarded by CivetWeb to keep the connection, unless it is large,
    // of unknown size, or the client waits for a 100 Continue it will not get: then close.
    // An unread body after a refusal (no token, not found) is never waited for: a client
    // trickling it would hold the thread.
    const bool close = request.has_body() && !request.body_read() &&
                       (response.status == 401 || response.status == 429 || request.chunked() ||
                        !request.header("Expect").empty() ||
                        static_cast<unsigned long long>(request.content_length()) > impl->max_request_bytes);
    // Counted before the reply leaves, so a client that scrapes next sees its request.
    if (impl->metrics != nullptr) CountRestRequest(*impl->metrics, request, response, start);
    SendResponse(conn, response, &request, close ? AfterReply::kClose : AfterReply::kKeepIfAsked);
    return response.status;
  } catch (const std::exception& e) {
    AnswerFailedRequest(conn, impl->log, e.what());
  } catch (...) {
    AnswerFailedRequest(conn, impl->log, nullptr);
  }
  return 500;
}

// Errors CivetWeb finds itself (unparsable request, unknown method, header too large) get
// JSON too; returning 1 falls back to CivetWeb's own page.
int RestServer::Impl::HttpError(mg_connection* conn, int status, const char* message) noexcept {
  try {
    const std::string_view text = message != nullptr && IsValidUtf8(message) ? message : "bad request";
    const auto* impl = static_cast<const Impl*>(mg_get_user_data(mg_get_context(conn)));
    HttpResponse response = status >= 500 ? InternalError(impl != nullptr ? impl->log : LogFn(),
                                                          "REST (CivetWeb): " + std::string(text), status)
                                          : InvalidArgument("request", "format", text, status);
    SendResponse(conn, response, nullptr, AfterReply::kClose);
    return 0;
  } catch (...) {
    return 1;
  }
}

int RestServer::Impl::LogMessage(const mg_connection* conn, const char* message) noexcept {
  auto* impl = static_cast<Impl*>(mg_get_user_data(mg_get_context(conn)));
  if (impl == nullptr || message == nullptr) return 0;
  try {
    {
      std::lock_guard<std::mutex> lock(impl->startup_mutex);
      if (impl->starting) {
        impl->startup_messages.emplace_back(message);
        return 1;
      }
    }
    SafeLog(impl->log, LogLevel::kWarning, std::string("REST (CivetWeb): ") + message);
  } catch (...) {
    // Building the line failed; CivetWeb drops it since we return 1.
  }
  return 1;
}

RestServer::RestServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RestServer::~RestServer() = default;

int RestServer::port() const { return impl_->port; }

Result<std::unique_ptr<RestServer>> RestServer::Start(const RestOptions& options, Engine& engine, LogFn log) {
  Status status = CheckOptions(options);
  if (!status.ok()) return status;

  auto impl = std::make_unique<Impl>(options, engine, std::move(log));
  {
    std::lock_guard<std::mutex> lock(LibraryMutex());
    const unsigned wanted = options.tls_cert.empty() ? 0 : MG_FEATURES_TLS;
    if (wanted != 0) {
      Status compat = LoadOpenSsl3Compat(options.tls_compat_dir);
      if (!compat.ok()) return compat;
    }
    // The result is a feature mask (0 for "no feature asked"), not a success flag; the
    // library counts this call either way, so it is always paired with mg_exit_library.
    const unsigned got = mg_init_library(wanted);
    impl->library_started = true;
    if ((got & wanted) != wanted) {
      return Status::InvalidArgument("tls_cert", "TLS is not available: CivetWeb could not initialise OpenSSL");
    }
  }

  // Streams hold their threads for as long as they last: they get max_streams of their own.
  const std::string threads = std::to_string(options.threads + options.max_streams);
  const std::string request_timeout = std::to_string(options.request_timeout_ms);
  const std::string keep_alive_timeout = std::to_string(options.keep_alive_timeout_ms);
  std::vector<const char*> config = {
      "listening_ports", options.listen.c_str(), "num_threads", threads.c_str(),
      // CivetWeb's deadline for a whole request head (from its first byte), so a client
      // trickling headers holds its thread no longer than one that sends nothing.
      "request_timeout_ms", request_timeout.c_str(), "keep_alive_timeout_ms", keep_alive_timeout.c_str(),
      "enable_keep_alive", "yes", "decode_url", "no",  // the router splits the path first, then decodes each segment
      "tcp_nodelay", "1",                              // replies are one write; do not let Nagle hold them back
  };
  if (!options.tls_cert.empty()) {
    config.push_back("ssl_certificate");
    config.push_back(options.tls_cert.c_str());
  }
  config.push_back(nullptr);

  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof(callbacks));
  callbacks.begin_request = &Impl::BeginRequest;
  callbacks.http_error = &Impl::HttpError;
  callbacks.log_message = &Impl::LogMessage;

  mg_init_data init;
  std::memset(&init, 0, sizeof(init));
  init.callbacks = &callbacks;
  init.user_data = impl.get();
  init.configuration_options = config.data();

  char error_text[256] = {};
  unsigned error_code = 0;
  mg_error_data error;
  std::memset(&error, 0, sizeof(error));
  error.code = &error_code;
  error.text = error_text;
  error.text_buffer_size = sizeof(error_text);

  impl->context = mg_start2(&init, &error);
  std::vector<std::string> messages;
  {
    std::lock_guard<std::mutex> lock(impl->startup_mutex);
    impl->starting = false;
    messages.swap(impl->startup_messages);
  }
  if (impl->context == nullptr) {
    std::string reason = !messages.empty() ? messages.front() : error_text;
    if (reason.empty()) reason = "unknown CivetWeb error";
    return Status::InvalidArgument("listen", "cannot start the REST server on " + options.listen + ": " + reason);
  }
  for (const std::string& message : messages) SafeLog(impl->log, LogLevel::kWarning, "REST (CivetWeb): " + message);
  mg_server_port ports[16];
  const int count = mg_get_server_ports(impl->context, 16, ports);
  impl->port = count > 0 ? ports[0].port : 0;
  for (int i = 0; i < count; ++i) {
    if (ports[i].protocol == 1) impl->ipv4_ports.push_back(ports[i].port);
  }
  return std::unique_ptr<RestServer>(new RestServer(std::move(impl)));
}

}  // namespace twins
