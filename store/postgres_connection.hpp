// One libpq connection used with a deadline: connecting, sending a statement and waiting for its
// results never take longer than the caller allows, whatever the server or the network does.
//
// Why a client-side deadline: a server that is stopped (SIGSTOP, a frozen VM) still has a kernel
// that accepts connections and acknowledges every byte, so neither TCP keepalives nor
// tcp_user_timeout ever fire, and statement_timeout runs on the frozen server: a plain PQexec
// waits forever (measured: still waiting after 40 s with all of them set to 1 s). So the
// connection is non-blocking and every wait is a poll() on its socket that ends at the deadline;
// then the connection is closed (a query may be half done on it), and the caller gets an error.
//
// Thread-safety: none; a PGconn is used by one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace twins {

struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;
struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
using PgConn = std::unique_ptr<PGconn, PgConnDeleter>;

// When a call must be done by, and the time it was given (what error messages quote).
struct PgDeadline {
  static PgDeadline After(std::chrono::milliseconds timeout) {
    return {std::chrono::steady_clock::now() + timeout, timeout};
  }
  // Milliseconds left, rounded up (a poll() for them does not end early); 0 once passed.
  int MillisLeft() const;

  std::chrono::steady_clock::time_point at;
  std::chrono::milliseconds timeout;
};

struct PgConnectOptions {
  std::string uri;            // a libpq connection URI or key=value string; may name several hosts
  std::string password_file;  // libpq's passfile; empty: PGPASSFILE or ~/.pgpass
  // The session's statement_timeout is 90 % of it: a statement that is slow on a live server
  // (a lock wait) is cancelled by the server, which keeps the connection, before the client's
  // deadline would close it.
  std::chrono::milliseconds timeout = std::chrono::seconds(5);
};

// libpq's message, trimmed, on one line; "unknown error" when empty.
std::string ErrorText(const char* message);

// libpq's messages may quote the connection URI, password included: not repeated in ours.
std::string Redact(std::string message, const std::string& uri);

// "5 s", "1.5 s", "250 ms": a timeout as messages say it.
std::string PgDuration(std::chrono::milliseconds duration);

// Connects by the deadline: a connection in non-blocking mode (client_encoding UTF8,
// statement_timeout set), or why there is none (the URI redacted). When the URI names several
// hosts, each is tried in turn (libpq's order and target_session_attrs) with an even share of the
// time left, so that a host that does not answer leaves time for the next.
Result<PgConn> PgConnect(const PgConnectOptions& options, const PgDeadline& deadline);

// Sends what is queued and waits until a result can be read without blocking (PQgetResult),
// by the deadline. When the deadline passes or the connection breaks, `conn` is closed and
// reset, and the status says why: "PostgreSQL did not answer within 5 s" or "PostgreSQL
// connection lost: …". For callers that send their own statements (pipeline mode).
Status PgAwait(PgConn& conn, const PgDeadline& deadline);

// Runs one statement with text parameters, or, without parameters, a string of statements
// (the simple protocol), and waits for all of its results by the deadline: the last result, or
// the first error ("PostgreSQL error 23505: ERROR:  …", the connection kept). A timeout or a
// broken connection resets `conn` as PgAwait does.
Result<PgResult> PgExec(PgConn& conn, const std::string& sql, const std::vector<std::string>& params,
                        const PgDeadline& deadline);

}  // namespace twins
