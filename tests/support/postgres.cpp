#include "tests/support/postgres.hpp"

#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/support/loopback.hpp"

namespace twins::test {
namespace {

constexpr char kBin[] = "/usr/lib/postgresql/15/bin/";
constexpr auto kStartTimeout = std::chrono::seconds(30);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Forks and execs argv with stdout and stderr appended to `log`, as uid/gid when as_root.
// In the child only async-signal-safe calls: everything is prepared before the fork.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log, bool as_root, uid_t uid, gid_t gid) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return -1;
  if (as_root && fchown(out, uid, gid) != 0) {
    close(out);
    return -1;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(out, 1);
    dup2(out, 2);
    if (as_root && (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) _exit(126);
    // After setuid, which clears it: the server goes when the test does, however it ends.
    prctl(PR_SET_PDEATHSIG, SIGINT);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out);
  return pid;
}

}  // namespace

Postgres::Postgres(const ServerOptions& options)
    : synchronous_standby_(options.synchronous_standby), standby_(options.standby_of != nullptr) {
  as_root_ = geteuid() == 0;
  if (as_root_) {
    const passwd* user = getpwnam("postgres");
    if (user == nullptr) {
      error_ = "run as root, and there is no postgres user to run PostgreSQL as (install postgresql-15)";
      return;
    }
    uid_ = user->pw_uid;
    gid_ = user->pw_gid;
    if (chown(dir().c_str(), uid_, gid_) != 0) {
      error_ = "cannot give " + dir() + " to the postgres user";
      return;
    }
  }
  const std::string data = dir_.sub("data");
  if (standby_) {
    // -R: the standby's settings (primary_conninfo, standby.signal); -C -S: a replication slot,
    // so that the primary keeps the WAL the standby has not received; -c fast: no wait for a
    // spread checkpoint. application_name in the connection string names the standby (-R keeps it).
    const std::string primary = "host=127.0.0.1 port=" + std::to_string(options.standby_of->port()) +
                                " user=postgres application_name=standby";
    const int status = Run({std::string(kBin) + "pg_basebackup", "-D", data, "-d", primary, "-R", "-C", "-S", "standby",
                            "-c", "fast", "--no-sync"},
                           dir_.sub("basebackup.log"));
    if (status != 0) {
      error_ = "pg_basebackup failed (" + std::to_string(status) + "): " + ReadFile(dir_.sub("basebackup.log"));
      return;
    }
  } else {
    const int status = Run({std::string(kBin) + "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                            "--locale=C", "--no-sync", "--no-instructions"},
                           dir_.sub("initdb.log"));
    if (status != 0) {
      error_ = "initdb failed (" + std::to_string(status) + "): " + ReadFile(dir_.sub("initdb.log"));
      return;
    }
  }
  // A port found free may be taken before the server binds it: then another one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    if (Launch()) return;
    if (ReadFile(dir_.sub("postgres.log")).find("could not bind") == std::string::npos) break;
  }
  error_ = "PostgreSQL did not start: " + ReadFile(dir_.sub("postgres.log"));
}

Postgres::~Postgres() { Stop(); }

std::string Postgres::Uri(const std::string& user, const std::string& database) const {
  return "postgresql://" + user + "@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string Postgres::Exec(const std::string& sql) const {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(Uri().c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) return PQerrorMessage(conn.get());
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn.get(), sql.c_str()), PQclear);
  const ExecStatusType status = PQresultStatus(result.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return "";
  return PQresultErrorMessage(result.get());
}

Result<std::string> Postgres::Value(const std::string& sql) const {
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(Uri().c_str()), PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) return Status::Internal(PQerrorMessage(conn.get()));
  std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn.get(), sql.c_str()), PQclear);
  if (PQresultStatus(result.get()) != PGRES_TUPLES_OK) return Status::Internal(PQresultErrorMessage(result.get()));
  return std::string(PQntuples(result.get()) == 0 ? "" : PQgetvalue(result.get(), 0, 0));
}

bool Postgres::Stop() {
  if (pid_ <= 0) return false;
  Thaw();
  kill(pid_, SIGINT);  // fast shutdown: clients disconnected, a checkpoint, exit
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return true;
}

bool Postgres::Start() {
  if (pid_ > 0) return true;
  if (Launch()) return true;
  error_ = "PostgreSQL did not start again: " + ReadFile(dir_.sub("postgres.log"));
  return false;
}

void Postgres::Freeze() { Signal(SIGSTOP); }

void Postgres::Thaw() { Signal(SIGCONT); }

void Postgres::Kill() {
  if (pid_ <= 0) return;
  Signal(SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;  // its children, killed too, are reaped by init
}

void Postgres::Signal(int signal) {
  if (pid_ <= 0) return;
  if (signal != SIGCONT) kill(pid_, SIGSTOP);
  std::ifstream children("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
  for (pid_t child = 0; children >> child;) kill(child, signal);
  kill(pid_, signal);
}

bool Postgres::AwaitStandby() {
  std::string sql =
      "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'standby' AND state = 'streaming'";
  // 'ANY 1 (…)' makes a standby a quorum member ("quorum"), 'FIRST 1 (…)' the "sync" one.
  if (synchronous_standby_) sql += " AND sync_state IN ('sync', 'quorum')";
  std::string last;
  for (const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
       std::chrono::steady_clock::now() < deadline;) {
    auto count = Value(sql);
    if (count.ok() && *count == "1") return true;
    last = count.ok() ? "not streaming yet" : count.status().message();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error_ = "the standby did not stream within 30 s: " + last;
  return false;
}

bool Postgres::Promote() {
  // pg_promote(wait => true) returns once the server has left recovery and accepts writes.
  auto promoted = Value("SELECT pg_promote(true, 30)");
  if (promoted.ok() && *promoted == "t") return true;
  error_ = "promotion failed: " + (promoted.ok() ? "pg_promote returned " + *promoted : promoted.status().message());
  return false;
}

int Postgres::Run(const std::vector<std::string>& argv, const std::string& log) const {
  const pid_t pid = Spawn(argv, log, as_root_, uid_, gid_);
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool Postgres::Launch() {
  std::vector<std::string> argv({std::string(kBin) + "postgres", "-D", dir_.sub("data"), "-p", std::to_string(port_),
                                 "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + dir(), "-c",
                                 "fsync=on", "-c", "max_connections=50", "-c", "shared_buffers=16MB"});
  if (synchronous_standby_) {
    // On the command line, not in postgresql.conf: a standby copied from this server does not
    // inherit it, so once promoted it does not wait for a standby of its own.
    argv.insert(argv.end(), {"-c", "synchronous_standby_names=ANY 1 (standby)", "-c", "synchronous_commit=on"});
  }
  if (standby_) {
    // A promotion that arrives as the standby starts waiting for WAL (its primary just died) is
    // noticed only when that wait ends: wal_retrieve_retry_interval, 5 s by default (measured:
    // 3 promotions of 4 took 5.1 s, the fourth 0.1 s).
    argv.insert(argv.end(), {"-c", "wal_retrieve_retry_interval=100ms"});
  }
  pid_ = Spawn(argv, dir_.sub("postgres.log"), as_root_, uid_, gid_);
  if (pid_ < 0) return false;
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) + " user=postgres dbname=postgres";
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Stop();
  return false;
}

Postgres& SharedPostgres() {
  static Postgres server;
  return server;
}

}  // namespace twins::test
