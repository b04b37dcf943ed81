// mosquitto-twins-admin, the built binary, with PostgreSQL (tests/support/postgres.hpp: one real
// server for the binary, a database per test whose schema `twins` the command uses): RocksDB to
// PostgreSQL and back, an export while writers run, and what it refuses (a non-empty or busy
// target, a bad URI, an unreachable server, a wrong password), changing nothing then.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "store/postgres_shared_store.hpp"
#include "store/postgres_store.hpp"
#include "tests/support/admin.hpp"
#include "tests/support/postgres.hpp"

namespace twins {
namespace {

namespace fs = std::filesystem;

using test::Lines;
using test::SharedPostgres;
using test::WriteFile;
using Outcome = test::AdminOutcome;

// The export without its header line (which names the source's schema version).
std::string Body(const std::string& exported) { return exported.substr(exported.find('\n') + 1); }

class AdminPostgresTest : public test::AdminFixture {
 protected:
  void SetUp() override {
    ASSERT_TRUE(SharedPostgres().ok()) << SharedPostgres().error();
    uri_ = NewDatabase();
  }

  // A new, empty database of the shared server: its URI.
  std::string NewDatabase() {
    static std::atomic<int> databases{0};
    const std::string name = "admin_" + std::to_string(++databases);
    EXPECT_EQ(SharedPostgres().Exec("CREATE DATABASE " + name), "");
    return SharedPostgres().Uri("postgres", name);
  }

  // The store a broker would open on the database at `uri`.
  static std::unique_ptr<DocumentStore> OpenStore(const std::string& uri, uint64_t changelog_bytes = 64 << 20) {
    PostgresOptions options;
    options.uri = uri;
    options.changelog_bytes = changelog_bytes;
    auto store = OpenPostgresStore(options);
    EXPECT_TRUE(store.ok()) << store.status().message();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  // The first value `sql` returns in the database at `uri`, or "ERROR: …".
  static std::string Sql(const std::string& uri, const std::string& sql) {
    std::unique_ptr<PGconn, void (*)(PGconn*)> conn(PQconnectdb(uri.c_str()), PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) return std::string("ERROR: ") + PQerrorMessage(conn.get());
    std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQexec(conn.get(), sql.c_str()), PQclear);
    const ExecStatusType status = PQresultStatus(result.get());
    if (status == PGRES_COMMAND_OK) return "";
    if (status != PGRES_TUPLES_OK) return std::string("ERROR: ") + PQresultErrorMessage(result.get());
    return PQntuples(result.get()) == 0 ? "" : PQgetvalue(result.get(), 0, 0);
  }

  // A store's connection ends with it, on the server's side a moment later: then an import no
  // longer finds it in use.
  static void AwaitNoStore(const std::string& uri) {
    const std::string sql =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND application_name = 'mosquitto-twins'";
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10); Sql(uri, sql) != "0";) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "a store's connection stays open";
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  static std::string SchemaExists(const std::string& uri) {
    return Sql(uri, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'twins')");
  }

  std::string uri_;
};

// Documents, versions, modified times, watches and the change log's position survive RocksDB
// -> PostgreSQL -> RocksDB; the exports differ only in the header's schema version.
TEST_F(AdminPostgresTest, RocksDbToPostgresAndBackIsTheSame) {
  MakeDatabase(dir_.sub("db"));
  const std::string first = Export(dir_.sub("db"));
  ASSERT_EQ(Lines(first).size(), 8u) << first;

  Outcome run = Admin("import --db " + uri_, first);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "imported 4 documents and 2 watches into the PostgreSQL schema twins\n");
  Outcome check = Admin("check --db " + uri_);
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_EQ(check.out,
            "schema 1\ntwins 2\ndocuments 4\nwatches 2\nchange log entries 0, newest seq 7\n"
            "version index entries 0\nok\n");
  const std::string from_postgres = Export(uri_);
  EXPECT_EQ(Lines(from_postgres).front(), R"({"type":"header","format":1,"schema":1,"seq":7})");
  EXPECT_EQ(Body(from_postgres), Body(first));

  run = Admin("import --db " + dir_.sub("copy"), from_postgres);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Export(dir_.sub("copy")), first);

  // The stores themselves: the times as written, and each log goes on after seq 7.
  const StoredDocument original = [&] {
    auto store = OpenRocksDbStore(dir_.sub("db"));
    return (*store)->Get("device-1", "state")->value();
  }();
  {
    auto copy = OpenRocksDbStore(dir_.sub("copy"));
    ASSERT_TRUE(copy.ok()) << copy.status().message();
    EXPECT_EQ((*copy)->Changes().newest, 7u);
    EXPECT_EQ((*copy)->Get("device-1", "state")->value().modified_ms, original.modified_ms);
  }
  auto store = OpenStore(uri_);
  ASSERT_NE(store, nullptr);
  const StoredDocument imported = store->Get("device-1", "state")->value();
  EXPECT_EQ(imported.version, original.version);
  EXPECT_EQ(imported.modified_ms, original.modified_ms);
  EXPECT_EQ(imported.data, original.data);
  EXPECT_EQ(store->Changes().oldest, 8u);
  EXPECT_EQ(store->Changes().newest, 7u);
  Engine engine(std::move(store), Limits());
  EXPECT_EQ(engine.Watches("dévice 2", "state").size(), 1u);
  auto request = ParseWriteRequest(R"({"data":{"x":1}})", engine.limits());
  ASSERT_EQ(engine.Put("device-1", "state", *request)->version, 3u);
  auto changes = engine.ReadChanges(0, 10, 1 << 20);
  ASSERT_TRUE(changes.ok()) << changes.status().message();
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].seq, 8u);
}

// Brokers sharing the schema (the shared store) go on after the imported seq when the import
// comes before their first start; after it, their seq counter exists and would not follow,
// so an import with a seq is refused. The counter also counts as the newest seq in an export.
TEST_F(AdminPostgresTest, BrokersGoOnAfterTheImportedSeq) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  ASSERT_EQ(Admin("import --db " + uri_, exported).status, 0);
  PostgresOptions options;
  options.uri = uri_;
  {
    auto broker = OpenSharedPostgresStore(options);
    ASSERT_TRUE(broker.ok()) << broker.status().message();
  }
  EXPECT_EQ(Sql(uri_, "SELECT value FROM twins.meta WHERE key = 'seq'"), "7");
  ASSERT_EQ(Sql(uri_, "UPDATE twins.meta SET value = '20' WHERE key = 'seq'"), "");
  EXPECT_EQ(Lines(Export(uri_)).front(), R"({"type":"header","format":1,"schema":1,"seq":20})");

  const std::string opened = NewDatabase();
  options.uri = opened;
  ASSERT_TRUE(OpenSharedPostgresStore(options).ok());
  AwaitNoStore(opened);
  Outcome run = Admin("import --db " + opened, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("refused: brokers have opened the PostgreSQL schema twins already, and their seq counter "
                         "would not go on after the export's seq 7"),
            std::string::npos)
      << run.err;
  EXPECT_EQ(Sql(opened, "SELECT count(*) FROM twins.documents"), "0");
  // An export whose log never had an entry has no seq to go on after: taken.
  const std::string unlogged = R"({"type":"header","format":1,"schema":2,"seq":0})"
                               "\n" +
                               Body(exported);
  run = Admin("import --db " + opened, unlogged);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Export(opened), R"({"type":"header","format":1,"schema":1,"seq":0})"
                            "\n" +
                                Body(exported));
}

// --schema names the schema, as plugin_opt_store_schema; only with a URI.
TEST_F(AdminPostgresTest, TheSchemaOptionNamesTheSchema) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  Outcome run = Admin("import --db " + uri_ + " --schema fleet_1", exported);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "imported 4 documents and 2 watches into the PostgreSQL schema fleet_1\n");
  EXPECT_EQ(Body(Export(uri_ + " --schema=fleet_1")), Body(exported));
  EXPECT_EQ(Admin("check --db " + uri_ + " --schema fleet_1").status, 0);
  EXPECT_EQ(SchemaExists(uri_), "f");  // no schema twins
  run = Admin("export --db " + uri_);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("has no schema twins"), std::string::npos) << run.err;

  for (const std::string command : {"import", "export", "check"}) {
    run = Admin(command + " --db " + uri_ + " --schema Fleet-2", exported);
    EXPECT_EQ(run.status, 1) << command;
    EXPECT_NE(run.err.find("PostgreSQL schema name \"Fleet-2\": use lower-case letters"), std::string::npos) << run.err;
    run = Admin(command + " --db " + dir_.sub("db") + " --schema fleet_1", exported);
    EXPECT_EQ(run.status, 2) << command;
    EXPECT_NE(run.err.find("--schema goes with a PostgreSQL URI"), std::string::npos) << run.err;
  }
  EXPECT_EQ(Sql(uri_, "SELECT count(*) FROM pg_namespace WHERE nspname ILIKE 'fleet%'"), "1");
}

// Two writers put {"n":k} as the k-th version of their documents through the engine over the
// PostgreSQL store (its log trimmed as it goes) while exports and checks run: each export is one
// moment, so its versions add up to its seq (each change was one put, committed with its log
// entry) and each n is its version.
TEST_F(AdminPostgresTest, ExportWhileWritersRunIsOneMoment) {
  Engine engine(OpenStore(uri_, 32 << 10), Limits());
  ASSERT_TRUE(engine.start_status().ok()) << engine.start_status().message();
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  auto writer = [&](const std::string& twin) {
    std::map<std::string, uint64_t> count;
    const std::string pad(500, 'p');
    for (int i = 0; !stop; ++i) {
      const std::string doc = "doc" + std::to_string(i % 5);
      const uint64_t n = ++count[doc];
      auto request = ParseWriteRequest(R"({"data":{"n":)" + std::to_string(n) + R"(,"pad":")" + pad + "\"}}",
                                       engine.limits());
      auto written = engine.Put(twin, doc, *request);
      if (!written.ok() || written->version != n) {
        ADD_FAILURE() << "put failed: " << (written.ok() ? "version" : written.status().message());
        return;
      }
      if (++writes % 10 == 0 && !engine.Sync().ok()) ADD_FAILURE() << "sync failed";
    }
  };
  std::thread first(writer, "device-a");
  std::thread second(writer, "device-b");
  std::string last;
  uint64_t previous_seq = 0;
  int rounds = 0;
  for (; rounds < 5 && test::WritesGoOn(writes); ++rounds) {
    Outcome run = Admin("export --db " + uri_);
    ASSERT_EQ(run.status, 0) << run.err;
    const uint64_t seq = test::ExpectOneMoment(run.out);
    EXPECT_GT(seq, previous_seq);
    previous_seq = seq;
    Outcome check = Admin("check --db " + uri_);
    EXPECT_EQ(check.status, 0) << check.out << check.err;
    last = run.out;
  }
  stop = true;
  first.join();
  second.join();
  EXPECT_EQ(rounds, 5) << "the writers stopped";
  // The log was trimmed meanwhile: what the exports read was a log losing its oldest entries.
  EXPECT_GT(engine.Changes().oldest, 1u);
  Outcome imported = Admin("import --db " + dir_.sub("restored"), last);
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_EQ(Body(Export(dir_.sub("restored"))), Body(last));
}

// An import goes only into a schema without documents, watches or change-log entries, and one
// no broker is connected to; a refusal writes nothing. A missing schema, or one a broker's
// first start left empty, is taken.
TEST_F(AdminPostgresTest, ImportRefusesANonEmptyOrBusyTargetAndChangesNothing) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  ASSERT_EQ(Admin("import --db " + uri_, exported).status, 0);
  Outcome run = Admin("import --db " + uri_, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("refused: the PostgreSQL schema twins is not empty: it holds 4 documents"), std::string::npos)
      << run.err;
  EXPECT_EQ(Export(uri_), R"({"type":"header","format":1,"schema":1,"seq":7})"
                          "\n" +
                              Body(exported));

  // A schema whose documents were all deleted still has its change log; one with a watch only.
  const std::string emptied = NewDatabase();
  {
    Engine engine(OpenStore(emptied), Limits());
    auto request = ParseWriteRequest(R"({"data":{}})", engine.limits());
    ASSERT_TRUE(engine.Put("t", "d", *request).ok());
    ASSERT_TRUE(engine.Delete("t", "d", VersionCondition()).ok());
  }
  AwaitNoStore(emptied);
  run = Admin("import --db " + emptied, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("is not empty: its change log has reached seq 2"), std::string::npos) << run.err;
  const std::string watched = NewDatabase();
  ASSERT_TRUE(OpenStore(watched)->PutWatch({"t", "d", "client", "1"}).ok());
  AwaitNoStore(watched);
  run = Admin("import --db " + watched, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("is not empty: it holds 1 watches"), std::string::npos) << run.err;
  EXPECT_EQ(Sql(watched, "SELECT count(*) FROM twins.documents"), "0");

  // A schema twins of something else.
  const std::string foreign = NewDatabase();
  ASSERT_EQ(Sql(foreign, "CREATE SCHEMA twins; CREATE TABLE twins.invoices (id int)"), "");
  run = Admin("import --db " + foreign, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("schema twins holds no twins schema version: not a twins schema"), std::string::npos)
      << run.err;
  EXPECT_EQ(Sql(foreign, "SELECT count(*) FROM pg_tables WHERE schemaname = 'twins'"), "1");

  // A broker's store connected to the empty schema its first start made: refused while it is.
  const std::string fresh = NewDatabase();
  {
    auto broker = OpenStore(fresh);
    ASSERT_NE(broker, nullptr);
    run = Admin("import --db " + fresh, exported);
    EXPECT_EQ(run.status, 1);
    EXPECT_NE(run.err.find("refused: the PostgreSQL schema twins is in use: 1 connection(s) of mosquitto-twins"),
              std::string::npos)
        << run.err;
    EXPECT_EQ(Sql(fresh, "SELECT count(*) FROM twins.documents"), "0");
  }
  AwaitNoStore(fresh);
  run = Admin("import --db " + fresh, exported);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Body(Export(fresh)), Body(exported));
}

// The documents, each watch and the start seq commit one by one: when a step fails, what the
// earlier ones wrote is removed again; when that fails too, the message says the schema holds
// part of the import.
TEST_F(AdminPostgresTest, AFailedImportRemovesWhatItWrote) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  ASSERT_NE(OpenStore(uri_), nullptr);  // the schema, so that a trigger can refuse the second watch
  ASSERT_EQ(Sql(uri_,
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " IF (SELECT count(*) FROM twins.watches) > 0 THEN RAISE 'refused by the test'; END IF;"
                " RETURN NEW; END $$;"
                "CREATE TRIGGER refuse BEFORE INSERT ON twins.watches FOR EACH ROW EXECUTE FUNCTION refuse()"),
            "");
  AwaitNoStore(uri_);
  Outcome run = Admin("import --db " + uri_, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("refused by the test"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("; nothing imported"), std::string::npos) << run.err;
  EXPECT_EQ(Sql(uri_, "SELECT (SELECT count(*) FROM twins.documents) + (SELECT count(*) FROM twins.watches)"), "0");
  EXPECT_EQ(Sql(uri_, "SELECT count(*) FROM twins.meta WHERE key = 'changelog_after'"), "0");

  ASSERT_EQ(Sql(uri_, "CREATE TRIGGER keep BEFORE DELETE ON twins.documents FOR EACH ROW EXECUTE FUNCTION refuse()"),
            "");
  run = Admin("import --db " + uri_, exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("then removing what was written failed too"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("the PostgreSQL schema twins holds part of the import"), std::string::npos) << run.err;
  EXPECT_EQ(Sql(uri_, "SELECT count(*) FROM twins.documents"), "4");
}

// Whatever cannot connect fails with libpq's reason, never quoting a password, and changes
// nothing: no file, no schema. The password file given gives the password.
TEST_F(AdminPostgresTest, BadUriUnreachableServerOrWrongPasswordChangeNothing) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  const std::string database = uri_.substr(uri_.rfind('/') + 1);
  const std::string port = std::to_string(SharedPostgres().port());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"postgresql://twins:s3cret@[::1", "IPv6 host address in URI: \"<the connection URI>\""},
      {"postgres://postgres:s3cret@127.0.0.1:1/" + database, "Connection refused"},
      {"postgresql://postgres:s3cret@127.0.0.1:" + port + "/no_such_database",
       "database \"no_such_database\" does not exist"},
  };
  for (const auto& [uri, message] : cases) {
    for (const std::string& command :
         {std::string("import"), "export --out " + dir_.sub("out.jsonl"), std::string("check")}) {
      Outcome run = Admin(command + " --db " + uri, exported);
      EXPECT_EQ(run.status, 1) << command << uri;
      EXPECT_NE(run.err.find("cannot connect to PostgreSQL"), std::string::npos) << run.err;
      EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
      EXPECT_EQ(run.err.find("s3cret"), std::string::npos) << run.err;
    }
  }
  EXPECT_FALSE(fs::exists(dir_.sub("out.jsonl")));
  EXPECT_EQ(SchemaExists(uri_), "f");

  // A role that must give a password over TCP (a first line in pg_hba.conf).
  const std::string role = database + "_pw";
  ASSERT_EQ(SharedPostgres().Exec("CREATE ROLE " + role + " LOGIN PASSWORD 'p4ss:word'; ALTER DATABASE " + database +
                                  " OWNER TO " + role),
            "");
  const std::string hba = SharedPostgres().dir() + "/data/pg_hba.conf";
  const std::string rules = test::ReadFile(hba);
  WriteFile(hba, "host all " + role + " 127.0.0.1/32 scram-sha-256\n" + rules);
  ASSERT_EQ(SharedPostgres().Exec("SELECT pg_reload_conf()"), "");
  const std::string role_uri = SharedPostgres().Uri(role, database);
  const std::string wrong = dir_.sub("wrong.pgpass"), right = dir_.sub("right.pgpass");
  WriteFile(wrong, "127.0.0.1:" + port + ":" + database + ":" + role + ":not-it\n");
  WriteFile(right, "127.0.0.1:" + port + ":" + database + ":" + role + ":p4ss\\:word\n");
  chmod(wrong.c_str(), 0600);
  chmod(right.c_str(), 0600);
  // pg_reload_conf() only signals the server: wait until the new rule is in force.
  for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);;) {
    Outcome run = Admin("check --db " + role_uri);
    if (run.err.find("no password supplied") != std::string::npos) break;
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "pg_hba.conf was not reloaded: " << run.err;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (const std::string command : {"import", "export", "check"}) {
    Outcome run = Admin(command + " --db " + role_uri + " --password-file " + wrong, exported);
    EXPECT_EQ(run.status, 1) << command;
    EXPECT_NE(run.err.find("password authentication failed for user \"" + role + "\""), std::string::npos) << run.err;
    run = Admin(command + " --db " + role_uri + " --password-file " + dir_.sub("missing"), exported);
    EXPECT_EQ(run.status, 1) << command;
    EXPECT_NE(run.err.find("cannot read the PostgreSQL password file " + dir_.sub("missing")), std::string::npos)
        << run.err;
  }
  Outcome run = Admin("import --db " + SharedPostgres().Uri(role + ":wrong-pw", database), exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("password authentication failed"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("wrong-pw"), std::string::npos) << run.err;
  EXPECT_EQ(SchemaExists(uri_), "f");

  // The right password: the role owns the database, so it may create the schema.
  run = Admin("import --db " + role_uri + " --password-file " + right, exported);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Body(Export(role_uri + " --password-file " + right)), Body(exported));
  EXPECT_EQ(Admin("check --db " + role_uri + " --password-file=" + right).status, 0);
  WriteFile(hba, rules);
  EXPECT_EQ(SharedPostgres().Exec("SELECT pg_reload_conf()"), "");
}

// An export or check of a database without the schema creates none.
TEST_F(AdminPostgresTest, ExportOfADatabaseWithoutTwinsCreatesNothing) {
  for (const std::string command : {"export", "check"}) {
    Outcome run = Admin(command + " --db " + uri_);
    EXPECT_EQ(run.status, 1);
    EXPECT_NE(run.err.find("the PostgreSQL database has no schema twins"), std::string::npos) << run.err;
  }
  EXPECT_EQ(SchemaExists(uri_), "f");
  // Its twin: the schema a broker's first start makes exports as an empty database.
  ASSERT_NE(OpenStore(uri_), nullptr);
  EXPECT_EQ(Export(uri_), R"({"type":"header","format":1,"schema":1,"seq":0})"
                          "\n"
                          R"({"type":"end","documents":0,"watches":0})"
                          "\n");
}

// Check reads PostgreSQL as RocksDB: documents against their latest change-log entries.
TEST_F(AdminPostgresTest, CheckFindsDocumentsThatDisagreeWithTheChangeLog) {
  MakeTwins(OpenStore(uri_));
  Outcome run = Admin("check --db " + uri_);
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_NE(run.out.find("documents 4\nwatches 2\nchange log entries 7, newest seq 7\nversion index entries 6\nok\n"),
            std::string::npos)
      << run.out;
  // Behind the store's back: a version without its change, a deleted document back, data that
  // is not JSON.
  ASSERT_EQ(Sql(uri_,
                "UPDATE twins.documents SET version = 9 WHERE twin = 'device-1' AND doc = 'state';"
                "INSERT INTO twins.documents VALUES ('dévice 2', 'gone', 1, 1, '{\"a\":1}'),"
                " ('device-3', 'state', 1, 1, 'not json')"),
            "");
  run = Admin("check --db " + uri_);
  ExpectTheBrokenTwins(run, Admin("export --db " + uri_));
}

}  // namespace
}  // namespace twins
