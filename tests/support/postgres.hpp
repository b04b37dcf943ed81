// A real PostgreSQL 15 (Debian's postgresql-15) for tests: initdb in a temporary directory,
// the server on a free port of 127.0.0.1 (loopback.hpp's rule) and a socket in that directory,
// fsync on, trust authentication for the superuser `postgres`. PostgreSQL refuses to run as
// root: run as root, the directory belongs to the `postgres` user and initdb and the server
// run as that user. Readiness is a successful connection, not a sleep. The destructor stops
// the server (fast shutdown) and removes the directory.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace twins::test {

class Postgres {
 public:
  Postgres();  // initdb and Start(); error() says why when it failed
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

  // Fast shutdown (SIGINT), waiting for the server to exit. True when it was running.
  bool Stop();
  // Starts the server again on the same port and data; false (and error()) when it did not come up.
  bool Start();

 private:
  // Runs argv as the server's user with output to `log`, waiting for it: its exit status.
  int Run(const std::vector<std::string>& argv, const std::string& log) const;
  // Starts the postgres process on port_; true once it accepts connections.
  bool Launch();

  TempDir dir_;
  std::string error_;
  int port_ = 0;
  pid_t pid_ = -1;
  uid_t uid_ = 0;  // the server's user, when run as root
  gid_t gid_ = 0;
  bool as_root_ = false;
};

// One server for the whole test binary, started on first use, stopped at exit.
Postgres& SharedPostgres();

}  // namespace twins::test
