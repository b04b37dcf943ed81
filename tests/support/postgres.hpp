// A real PostgreSQL 15 (Debian's postgresql-15) for tests: initdb in a temporary directory,
// the server on a free port of 127.0.0.1 (loopback.hpp's rule) and a socket in that directory,
// fsync on, trust authentication for the superuser `postgres`. PostgreSQL refuses to run as
// root: run as root, the directory belongs to the `postgres` user and initdb and the server
// run as that user. Readiness is a successful connection, not a sleep. The destructor stops
// the server (fast shutdown) and removes the directory.
//
// For failover tests: a streaming standby of a running server (pg_basebackup -R with a
// replication slot), optionally the primary's synchronous one; promotion; a server frozen
// (SIGSTOP) or killed (SIGKILL) whole, as a machine that hangs or dies.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "common/status.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins::test {

class Postgres;

struct ServerOptions {
  // Commits wait until a standby named "standby" has flushed them (synchronous_standby_names =
  // 'ANY 1 (standby)', synchronous_commit = on), as a primary that must lose no acknowledged
  // commit on failover. Until such a standby streams, commits wait.
  bool synchronous_standby = false;
  // Not a new cluster but a streaming standby of this running server, named "standby"
  // (its application_name), through the replication slot "standby"; hot standby (read-only).
  const Postgres* standby_of = nullptr;
};

class Postgres {
 public:
  // initdb (or pg_basebackup) and Start(); error() says why when it failed
  explicit Postgres(const ServerOptions& options = {});
  ~Postgres();
  Postgres(const Postgres&) = delete;
  Postgres& operator=(const Postgres&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_.path(); }

  // postgresql://user@127.0.0.1:port/database
  std::string Uri(const std::string& user = "postgres", const std::string& database = "postgres") const;
  // Runs SQL (several statements allowed) as the superuser: "" on success, else the error.
  std::string Exec(const std::string& sql) const;
  // Runs one query as the superuser: the first column of its first row ("" without rows).
  Result<std::string> Value(const std::string& sql) const;

  // Fast shutdown (SIGINT), waiting for the server to exit. True when it was running.
  bool Stop();
  // Starts the server again on the same port and data; false (and error()) when it did not come up.
  bool Start();

  // SIGSTOP to every process of the server: connections stay open and the kernel still accepts
  // and acknowledges, but nothing answers. Thaw() (SIGCONT) resumes them; Stop() thaws first.
  void Freeze();
  void Thaw();
  // SIGKILL to every process of the server at once: no shutdown, no checkpoint, connections reset.
  void Kill();

  // On a primary: waits until the standby streams to it (and, with synchronous_standby, is the
  // synchronous one). False (and error()) when it does not within 30 s.
  bool AwaitStandby();
  // On a standby: promotes it and waits until it accepts writes. False (and error()) otherwise.
  bool Promote();

 private:
  // Runs argv as the server's user with output to `log`, waiting for it: its exit status.
  int Run(const std::vector<std::string>& argv, const std::string& log) const;
  // Starts the postgres process on port_; true once it accepts connections.
  bool Launch();
  // The server's processes (the postmaster first), signalled one by one: each backend is in
  // a process group of its own. The postmaster is stopped first, so that it forks no more.
  void Signal(int signal);

  TempDir dir_;
  std::string error_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t uid_ = 0;  // the server's user, when run as root
  gid_t gid_ = 0;
  bool as_root_ = false;
  bool synchronous_standby_ = false;
  bool standby_ = false;
};

// One server for the whole test binary, started on first use, stopped at exit.
Postgres& SharedPostgres();

}  // namespace twins::test
