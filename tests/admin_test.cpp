// mosquitto-twins-admin, the built binary: export, import and check over real RocksDB
// databases, and an export of a database a running broker holds while a client writes.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "tests/support/admin.hpp"
#include "tests/support/broker.hpp"
#include "tests/support/mqtt_client.hpp"
#include "tests/support/schema1_database.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins {
namespace {

namespace fs = std::filesystem;

using test::Lines;
using test::ReadFile;
using test::WriteFile;
using Outcome = test::AdminOutcome;

class AdminTest : public test::AdminFixture {
 protected:
  // Every file of the directory with its bytes.
  static std::map<std::string, std::string> Files(const std::string& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(dir)) files[entry.path().filename()] = ReadFile(entry.path());
    return files;
  }
};

TEST_F(AdminTest, ExportImportExportIsByteForByteTheSame) {
  MakeDatabase(dir_.sub("db"));
  const std::string first = Export(dir_.sub("db"));
  const std::vector<std::string> lines = Lines(first);
  ASSERT_EQ(lines.size(), 8u) << first;
  EXPECT_EQ(lines[0], R"({"type":"header","format":1,"schema":2,"seq":7})");
  EXPECT_EQ(lines[7], R"({"type":"end","documents":4,"watches":2})");
  EXPECT_NE(first.find(R"("twin_id":"device-1","document_name":"state","version":2,"modified_ms":)"), std::string::npos)
      << first;
  EXPECT_NE(first.find(R"({"type":"watch","twin_id":"dévice 2","document_name":"state","watcher":"client \"2\"",)"
                       R"("value":"0a"})"),
            std::string::npos)
      << first;

  Outcome imported = Admin("import --db " + dir_.sub("copy"), first);
  ASSERT_EQ(imported.status, 0) << imported.err;
  EXPECT_EQ(imported.out, "imported 4 documents and 2 watches into " + dir_.sub("copy") + "\n");
  EXPECT_EQ(Export(dir_.sub("copy")), first);
  Outcome check = Admin("check --db " + dir_.sub("copy"));
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("documents 4\nwatches 2\n"), std::string::npos) << check.out;

  // The versions and times as exported, and the change log goes on after the exported seq.
  auto original = OpenRocksDbStore(dir_.sub("db"));
  ASSERT_TRUE(original.ok());
  const StoredDocument before = (*original)->Get("device-1", "state")->value();
  original->reset();
  auto store = OpenRocksDbStore(dir_.sub("copy"));
  ASSERT_TRUE(store.ok()) << store.status().message();
  const StoredDocument after = (*store)->Get("device-1", "state")->value();
  EXPECT_EQ(after.version, 2u);
  EXPECT_EQ(after.modified_ms, before.modified_ms);
  EXPECT_EQ(after.data, before.data);
  EXPECT_EQ((*store)->Changes().newest, 7u);
  Engine engine(std::move(store).value(), Limits());
  EXPECT_EQ(engine.Watches("device-1", "desired").size(), 1u);
  auto request = ParseWriteRequest(R"({"data":{"x":1}})", engine.limits());
  ASSERT_EQ(engine.Put("device-1", "state", *request)->version, 3u);
  auto changes = engine.ReadChanges(0, 10, 1 << 20);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].seq, 8u);
}

TEST_F(AdminTest, ExportAndCheckNeverWriteTheDatabase) {
  MakeDatabase(dir_.sub("db"));
  const auto before = Files(dir_.sub("db"));
  Export(dir_.sub("db"));
  EXPECT_EQ(Admin("check --db " + dir_.sub("db")).status, 0);
  EXPECT_EQ(Files(dir_.sub("db")), before);
}

TEST_F(AdminTest, ASchema1DatabaseIsExportedWithoutModifiedTimesAndNeverUpgraded) {
  ASSERT_TRUE(test::MakeSchema1Database(dir_.sub("db"), "t", "doc", 5, R"({"old":1})"));
  const auto before = Files(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  EXPECT_EQ(exported,
            R"({"type":"header","format":1,"schema":1,"seq":0})"
            "\n"
            R"({"type":"document","twin_id":"t","document_name":"doc","version":5,"modified_ms":0,"data":{"old":1}})"
            "\n"
            R"({"type":"end","documents":1,"watches":0})"
            "\n");
  Outcome check = Admin("check --db " + dir_.sub("db"));
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_EQ(Files(dir_.sub("db")), before);
  ASSERT_EQ(Admin("import --db " + dir_.sub("copy"), exported).status, 0);
  EXPECT_EQ(Export(dir_.sub("copy")).substr(exported.find('\n')), exported.substr(exported.find('\n')));
}

TEST_F(AdminTest, ExportToAFileAppearsWhole) {
  MakeDatabase(dir_.sub("db"));
  Outcome run = Admin("export --db " + dir_.sub("db") + " --out " + dir_.sub("backup.jsonl"));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(run.out, "");
  EXPECT_EQ(ReadFile(dir_.sub("backup.jsonl")), Export(dir_.sub("db")));
  run = Admin("export --db " + dir_.sub("db") + " --out " + dir_.sub("no/such/dir/backup.jsonl"));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("cannot create"), std::string::npos) << run.err;
}

TEST_F(AdminTest, ImportRefusesANonEmptyDatabase) {
  MakeDatabase(dir_.sub("db"));
  MakeDatabase(dir_.sub("other"));
  const std::string exported = Export(dir_.sub("other"));
  const auto before = Files(dir_.sub("db"));
  Outcome run = Admin("import --db " + dir_.sub("db"), exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("is not empty: it holds 4 documents"), std::string::npos) << run.err;
  EXPECT_EQ(Files(dir_.sub("db")), before);

  // A database whose documents were all deleted still has its change log.
  {
    auto store = OpenRocksDbStore(dir_.sub("emptied"));
    Engine engine(std::move(store).value(), Limits());
    auto request = ParseWriteRequest(R"({"data":{}})", engine.limits());
    ASSERT_TRUE(engine.Put("t", "d", *request).ok());
    ASSERT_TRUE(engine.Delete("t", "d", VersionCondition()).ok());
  }
  run = Admin("import --db " + dir_.sub("emptied"), exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("its change log has reached seq 2"), std::string::npos) << run.err;

  fs::create_directory(dir_.sub("notadb"));
  WriteFile(dir_.sub("notadb/file"), "x");
  run = Admin("import --db " + dir_.sub("notadb"), exported);
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("neither an empty directory nor a database"), std::string::npos) << run.err;
}

TEST_F(AdminTest, ImportIntoAnEmptyDatabaseOrDirectory) {
  MakeDatabase(dir_.sub("db"));
  const std::string exported = Export(dir_.sub("db"));
  ASSERT_TRUE(OpenRocksDbStore(dir_.sub("fresh")).ok());  // as a broker's first start leaves it
  Outcome run = Admin("import --db " + dir_.sub("fresh") + "/ --in -", exported);
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Export(dir_.sub("fresh")), exported);
  fs::create_directory(dir_.sub("empty"));
  WriteFile(dir_.sub("backup.jsonl"), exported);
  run = Admin("import --db=" + dir_.sub("empty") + " --in=" + dir_.sub("backup.jsonl"));
  ASSERT_EQ(run.status, 0) << run.err;
  EXPECT_EQ(Export(dir_.sub("empty")), exported);
  // Nothing left beside them.
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".import-"), std::string::npos) << entry.path();
  }
}

TEST_F(AdminTest, ImportOfBadInputNamesTheLineAndWritesNothing) {
  const std::string header = R"({"type":"header","format":1,"schema":2,"seq":3})";
  const std::string doc =
      R"({"type":"document","twin_id":"t","document_name":"d","version":1,"modified_ms":5,"data":{}})";
  const std::string end = R"({"type":"end","documents":1,"watches":0})";
  auto with = [&](const std::string& line) { return header + "\n" + doc + "\n" + line + "\n" + end + "\n"; };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the input is empty"},
      {header + "\n" + doc + "\n{\"type\":\"doc\n" + end + "\n", "line 3: not one JSON object"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":"1","modified_ms":5,"data":{}})"),
       R"(line 3: "version" must be an integer from 1 to 2^53)"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":0,"modified_ms":5,"data":{}})"),
       R"(line 3: "version" must be an integer)"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":1,"modified_ms":1.5,"data":{}})"),
       R"(line 3: "modified_ms" must be an integer)"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":1,"modified_ms":5,"data":[]})"),
       R"(line 3: "data" must be a JSON object)"},
      {with(R"({"type":"document","twin_id":"a/b","document_name":"e","version":1,"modified_ms":5,"data":{}})"),
       "line 3: twin id cannot contain '/', '+', '#' or NUL: \"a/b\""},
      {with(R"({"type":"document","twin_id":"t","document_name":"_secret","version":1,"modified_ms":5,"data":{}})"),
       "line 3: document name"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":1,"modified_ms":5,"data":{"_x":1}})"),
       "line 3: key data._x starts with '_', reserved outside _config"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":1,"data":{}})"),
       R"(line 3: missing member "modified_ms")"},
      {with(R"({"type":"document","twin_id":"t","document_name":"e","version":1,"modified_ms":5,"data":{},"x":1})"),
       R"(line 3: unknown member "x")"},
      {with(R"({"type":"watch","twin_id":"t","document_name":"d","watcher":"","value":"0"})"),
       R"(line 3: "watcher" must not be empty)"},
      {with(R"({"type":"watch","twin_id":"t","document_name":"d","watcher":"c","value":7})"),
       R"(line 3: "value" must be a string)"},
      {with(R"({"type":"twin"})"), R"(line 3: unknown "type" "twin")"},
      {with(doc), "line 3: document t/d twice"},
      {with(header), "line 3: a header may only be the first line"},
      {doc + "\n" + end + "\n", "line 1: the first line must be the header"},
      {R"({"type":"header","format":2,"schema":2,"seq":3})"
       "\n" +
           end + "\n",
       "line 1: format 2 is not known"},
      {header + "\n" + doc + "\n", "the input ends without its end line (truncated?)"},
      {header + "\n" + doc + "\n" + end + "\n" + doc + "\n", "line 4: nothing may follow the end line"},
      {header + "\n" +
           R"({"type":"end","documents":2,"watches":0})"
           "\n",
       "line 2: the end line counts 2 documents and 0 watches, the input holds 0 and 0"},
  };
  for (const auto& [input, message] : cases) {
    Outcome run = Admin("import --db " + dir_.sub("db"), input);
    EXPECT_EQ(run.status, 1) << input;
    EXPECT_NE(run.err.find(message), std::string::npos) << "input:\n" << input << "stderr: " << run.err;
    EXPECT_NE(run.err.find("nothing imported"), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(dir_.sub("db"))) << input;
  }
  EXPECT_EQ(Admin("import --db " + dir_.sub("db"), header + "\n" + doc + "\n" + end + "\n").status, 0);
}

TEST_F(AdminTest, BadUsageIsRefusedWithTheReason) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "no command"},
      {"backup --db x", "unknown command \"backup\""},
      {"export", "export needs --db DIR"},
      {"export --db", "--db needs a value"},
      {"export --db=", "--db needs a value"},
      {"export --db x --in y", "unknown option \"--in\" for export"},
      {"import --db x --out y", "unknown option \"--out\" for import"},
      {"check --db x --db y", "--db given twice"},
      {"check --verbose --db x", "unknown option \"--verbose\" for check"},
      {"export --db x --password-file f", "--password-file goes with a PostgreSQL URI (postgresql://...) as --db"},
      {"check --db postgresql://h/d --password-file=", "--password-file needs a value"},
      {"import --db postgres://h/d --password-file f --password-file g", "--password-file given twice"},
  };
  for (const auto& [args, message] : cases) {
    Outcome run = Admin(args);
    EXPECT_EQ(run.status, 2) << args;
    EXPECT_NE(run.err.find(message), std::string::npos) << args << ": " << run.err;
    EXPECT_NE(run.err.find("usage: mosquitto-twins-admin"), std::string::npos) << run.err;
  }
  Outcome help = Admin("--help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("export --db DIR"), std::string::npos);

  for (const std::string command : {"export", "check"}) {
    Outcome run = Admin(command + " --db " + dir_.sub("missing"));
    EXPECT_EQ(run.status, 1);
    EXPECT_NE(run.err.find("no database at " + dir_.sub("missing")), std::string::npos) << run.err;
    EXPECT_FALSE(fs::exists(dir_.sub("missing")));
  }
  Outcome run = Admin("import --db " + dir_.sub("db") + " --in " + dir_.sub("missing.jsonl"));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("cannot read " + dir_.sub("missing.jsonl")), std::string::npos) << run.err;
  run = Admin("import --db " + dir_.sub("no/parent"), "");
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("is not a directory"), std::string::npos) << run.err;
}

TEST_F(AdminTest, CheckFindsDocumentsThatDisagreeWithTheChangeLog) {
  MakeDatabase(dir_.sub("db"));
  {
    auto store = OpenRocksDbStore(dir_.sub("db"));
    ASSERT_TRUE(store.ok());
    // Behind the engine's back: a version without its change, a deleted document back, data
    // that is not JSON.
    ASSERT_TRUE((*store)->Put("device-1", "state", {9, R"({"x":1})", 1}).ok());
    ASSERT_TRUE((*store)->Put("dévice 2", "gone", {1, R"({"a":1})", 1}).ok());
    ASSERT_TRUE((*store)->Put("device-3", "state", {1, "not json", 1}).ok());
    ASSERT_TRUE((*store)->Sync().ok());
  }
  Outcome run = Admin("check --db " + dir_.sub("db"));
  ExpectTheBrokenTwins(run, Admin("export --db " + dir_.sub("db")));
}

// A broker writes (two devices, each putting {"n":k} as the k-th version of its documents)
// while exports run: each export must be one moment of the database, so its documents'
// versions add up to its change-log seq (every change was one put, each in the same atomic
// write as its log entry), and each n is its version.
TEST_F(AdminTest, ExportOfADatabaseARunningBrokerHoldsIsConsistent) {
  // Small write buffers and change log: memtable flushes, log trimming and compactions happen
  // while the exports read.
  test::Broker broker("plugin_opt_max_requests_per_second 0\nplugin_opt_cache_mb 1\nplugin_opt_changelog_mb 1\n");
  ASSERT_TRUE(broker.Start()) << broker.log();
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0};
  auto writer = [&](const std::string& id) {
    test::MqttClient client(id, broker.port());
    std::map<std::string, int> count;
    const std::string pad(1000, 'p');
    for (int i = 0; !stop; ++i) {
      const std::string doc = "doc" + std::to_string(i % 5);
      const int n = ++count[doc];
      if (!client.Publish("$SCW/twins/me/" + doc + "/put",
                          R"({"data":{"n":)" + std::to_string(n) + R"(,"pad":")" + pad + "\"}}", 1)) {
        ADD_FAILURE() << "publish failed";
        return;
      }
      ++writes;
    }
  };
  std::thread first(writer, "device-a");
  std::thread second(writer, "device-b");
  while (writes < 500) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (int round = 0; round < 5; ++round) {
    Outcome run = Admin("export --db " + broker.db_path());
    ASSERT_EQ(run.status, 0) << run.err;
    EXPECT_GT(test::ExpectOneMoment(run.out), 0u);
    Outcome check = Admin("check --db " + broker.db_path());
    EXPECT_EQ(check.status, 0) << check.out << check.err;
    if (round == 4) {
      Outcome imported = Admin("import --db " + dir_.sub("restored"), run.out);
      EXPECT_EQ(imported.status, 0) << imported.err;
      EXPECT_EQ(Export(dir_.sub("restored")), run.out);
    }
    if (!test::WritesGoOn(writes)) {
      ADD_FAILURE() << "the broker stopped taking writes during the exports";
      break;
    }
  }
  stop = true;
  first.join();
  second.join();
  // The broker's own database is still its own: importing into it is refused.
  Outcome run = Admin("import --db " + broker.db_path(), Export(dir_.sub("restored")));
  EXPECT_EQ(run.status, 1);
  EXPECT_NE(run.err.find("is in use (a running broker?)"), std::string::npos) << run.err;
  broker.Stop();
  EXPECT_TRUE(broker.exited_cleanly()) << broker.log();
}

}  // namespace
}  // namespace twins
