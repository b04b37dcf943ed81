#include "store/postgres_connection.hpp"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace twins {
namespace {

using Clock = std::chrono::steady_clock;
using Overrides = std::vector<std::pair<std::string, std::string>>;

std::vector<std::string> Split(const std::string& list) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t comma = list.find(','); comma != std::string::npos; comma = list.find(',', start)) {
    parts.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  parts.push_back(list.substr(start));
  return parts;
}

// One connection attempt per host the URI names: the host, hostaddr and port of each, as
// parameters that override the URI's lists. A single attempt, overriding nothing, when it names
// one host or none.
Result<std::vector<Overrides>> HostAttempts(const std::string& uri) {
  char* error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(uri.c_str(), &error);
  if (parsed == nullptr) {
    const std::string text = error == nullptr ? "out of memory" : ErrorText(error);
    PQfreemem(error);
    return Status::Internal(Redact(text, uri));
  }
  std::vector<std::pair<std::string, std::vector<std::string>>> lists;
  size_t hosts = 1;
  for (const PQconninfoOption* option = parsed; option->keyword != nullptr; ++option) {
    const std::string key = option->keyword;
    if (option->val == nullptr || (key != "host" && key != "hostaddr" && key != "port")) continue;
    lists.emplace_back(key, Split(option->val));
    hosts = std::max(hosts, lists.back().second.size());
  }
  PQconninfoFree(parsed);
  std::vector<Overrides> attempts(hosts);
  if (hosts == 1) return attempts;
  // libpq's rule: a list has one value per host, or a single value for all of them.
  for (const auto& [key, values] : lists) {
    if (values.size() != hosts) continue;
    for (size_t i = 0; i < hosts; ++i) attempts[i].emplace_back(key, values[i]);
  }
  return attempts;
}

std::string Where(const PGconn* conn) {
  const char* host = PQhost(conn);
  const char* port = PQport(conn);
  return std::string("PostgreSQL at ") + (host == nullptr ? "?" : host) + ":" + (port == nullptr ? "?" : port);
}

// One host, by `until` (its share of the deadline; `hosts` share it).
Result<PgConn> Attempt(const PgConnectOptions& options, const Overrides& overrides, Clock::time_point until,
                       const PgDeadline& deadline, size_t hosts) {
  // Keywords before dbname are defaults the URI may override; those after it override the URI.
  std::vector<const char*> keys = {"application_name", "dbname", "client_encoding"};
  std::vector<const char*> values = {"mosquitto-twins", options.uri.c_str(), "UTF8"};
  if (!options.password_file.empty()) {
    keys.push_back("passfile");
    values.push_back(options.password_file.c_str());
  }
  for (const auto& [key, value] : overrides) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  PgConn conn(PQconnectStartParams(keys.data(), values.data(), 1));
  if (conn == nullptr) return Status::Internal("out of memory");
  // As libpq asks: poll for writing first, then as PQconnectPoll says.
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (PQstatus(conn.get()) != CONNECTION_BAD && state != PGRES_POLLING_FAILED) {
    if (state == PGRES_POLLING_OK) return conn;
    pollfd fd{PQsocket(conn.get()), static_cast<short>(state == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    const int left = PgDeadline{until, {}}.MillisLeft();
    const int ready = left == 0 ? 0 : poll(&fd, 1, left);
    if (ready == 0) {
      return Status::Internal(Where(conn.get()) + " did not answer within " + PgDuration(deadline.timeout) +
                              (hosts > 1 ? " (shared by " + std::to_string(hosts) + " hosts)" : ""));
    }
    if (ready < 0 && errno != EINTR) return Status::Internal(Where(conn.get()) + ": poll: " + std::strerror(errno));
    state = PQconnectPoll(conn.get());
  }
  return Status::Internal(ErrorText(PQerrorMessage(conn.get())));
}

// Closes the connection: what it was doing is abandoned.
Status Drop(PgConn& conn, std::string message) {
  conn.reset();
  return Status::Internal(std::move(message));
}

Status Lost(PgConn& conn) { return Drop(conn, "PostgreSQL connection lost: " + ErrorText(PQerrorMessage(conn.get()))); }

}  // namespace

int PgDeadline::MillisLeft() const {
  const auto left = at - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), INT_MAX));
}

std::string ErrorText(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  const size_t newline = text.find('\n');
  if (newline != std::string::npos) text[newline] = ' ';
  return text.empty() ? "unknown error" : text;
}

std::string Redact(std::string message, const std::string& uri) {
  for (size_t at = uri.empty() ? std::string::npos : message.find(uri); at != std::string::npos;
       at = message.find(uri, at)) {
    message.replace(at, uri.size(), "<the connection URI>");
  }
  return message;
}

std::string PgDuration(std::chrono::milliseconds duration) {
  const int64_t ms = duration.count();
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  if (ms > 1000 && ms % 100 == 0) return std::to_string(ms / 1000) + "." + std::to_string(ms % 1000 / 100) + " s";
  return std::to_string(ms) + " ms";
}

Result<PgConn> PgConnect(const PgConnectOptions& options, const PgDeadline& deadline) {
  auto attempts = HostAttempts(options.uri);
  if (!attempts.ok()) return attempts.status();
  std::string errors;
  for (size_t i = 0; i < attempts->size(); ++i) {
    const auto now = Clock::now();
    const auto left = std::max(deadline.at - now, Clock::duration::zero());
    const auto share = left / static_cast<Clock::duration::rep>(attempts->size() - i);
    auto conn = Attempt(options, (*attempts)[i], now + share, deadline, attempts->size());
    if (!conn.ok()) {
      errors += (errors.empty() ? "" : "; ") + conn.status().message();
      continue;
    }
    if (PQsetnonblocking(conn->get(), 1) != 0) return Lost(*conn);
    const int64_t statement_ms = std::max<int64_t>(options.timeout.count() * 9 / 10, 1);
    auto set = PgExec(*conn, "SET statement_timeout = " + std::to_string(statement_ms), {}, deadline);
    if (!set.ok()) return set.status();
    return std::move(conn).value();
  }
  return Status::Internal(Redact(errors, options.uri));
}

Status PgAwait(PgConn& conn, const PgDeadline& deadline) {
  for (;;) {
    if (PQstatus(conn.get()) != CONNECTION_OK) return Lost(conn);
    const int flushed = PQflush(conn.get());  // 0: all sent; 1: more to send
    if (flushed < 0) return Lost(conn);
    if (flushed == 0 && PQisBusy(conn.get()) == 0) return Status::Ok();
    pollfd fd{PQsocket(conn.get()), static_cast<short>(POLLIN | (flushed == 1 ? POLLOUT : 0)), 0};
    const int left = deadline.MillisLeft();
    const int ready = left == 0 ? 0 : poll(&fd, 1, left);
    if (ready == 0) return Drop(conn, Where(conn.get()) + " did not answer within " + PgDuration(deadline.timeout));
    if (ready < 0 && errno != EINTR) return Drop(conn, Where(conn.get()) + ": poll: " + std::strerror(errno));
    if (ready > 0 && (fd.revents & (POLLIN | POLLERR | POLLHUP)) != 0 && PQconsumeInput(conn.get()) == 0) {
      return Lost(conn);
    }
  }
}

Result<PgResult> PgExec(PgConn& conn, const std::string& sql, const std::vector<std::string>& params,
                        const PgDeadline& deadline) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const std::string& param : params) values.push_back(param.c_str());
  const int sent = params.empty() ? PQsendQuery(conn.get(), sql.c_str())
                                  : PQsendQueryParams(conn.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                                      values.data(), nullptr, nullptr, 0);
  if (sent == 0) return Lost(conn);
  PgResult last, error;
  for (;;) {
    Status s = PgAwait(conn, deadline);
    if (!s.ok()) return s;
    PgResult result(PQgetResult(conn.get()));
    if (result == nullptr) break;
    const ExecStatusType status = PQresultStatus(result.get());
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && error == nullptr) {
      error = std::move(result);
    } else {
      last = std::move(result);
    }
  }
  // A server that goes away says so in an error result first (a fast shutdown's FATAL).
  if (PQstatus(conn.get()) != CONNECTION_OK) return Lost(conn);
  if (error == nullptr) return last;
  const char* state = PQresultErrorField(error.get(), PG_DIAG_SQLSTATE);
  return Status::Internal("PostgreSQL error" + (state == nullptr ? std::string() : std::string(" ") + state) + ": " +
                          ErrorText(PQresultErrorMessage(error.get())));
}

}  // namespace twins
