// Running the built mosquitto-twins-admin (TWINS_ADMIN_PATH) from tests, and the database its
// tests export: admin_test (RocksDB) and admin_postgres_test (PostgreSQL and both ways between).
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"
#include "engine/json.hpp"
#include "tests/support/temp_dir.hpp"

namespace twins::test {

struct AdminOutcome {
  int status = -1;
  std::string out;
  std::string err;
};

inline std::string ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary);
  file << text;
}

inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Checks an export of writers that each put {"n":k,…} as the k-th version of their documents
// as one moment: every n is its version, and the versions add up to the header's seq (each
// change was one put, made in the same atomic write as its log entry). Returns that seq.
inline uint64_t ExpectOneMoment(const std::string& exported) {
  const std::vector<std::string> lines = Lines(exported);
  if (lines.size() < 2) {
    ADD_FAILURE() << "not an export: " << exported;
    return 0;
  }
  const Json header(cJSON_Parse(lines.front().c_str()));
  const uint64_t seq = static_cast<uint64_t>(cJSON_GetObjectItem(header.get(), "seq")->valuedouble);
  uint64_t versions = 0;
  for (size_t i = 1; i + 1 < lines.size(); ++i) {
    const Json line(cJSON_Parse(lines[i].c_str()));
    const double version = cJSON_GetObjectItem(line.get(), "version")->valuedouble;
    EXPECT_EQ(cJSON_GetObjectItem(cJSON_GetObjectItem(line.get(), "data"), "n")->valuedouble, version) << lines[i];
    versions += static_cast<uint64_t>(version);
  }
  EXPECT_EQ(versions, seq) << exported;
  return seq;
}

// Whether `count` (writes made) grows by 20 within 30 s.
inline bool WritesGoOn(const std::atomic<int>& count) {
  const int seen = count;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (count < seen + 20 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return count >= seen + 20;
}

class AdminFixture : public testing::Test {
 protected:
  // Runs the admin command with `args` (shell words: the test's paths and URIs hold no spaces
  // or shell characters), `input` on its stdin.
  AdminOutcome Admin(const std::string& args, const std::string& input = "") {
    WriteFile(dir_.sub("stdin"), input);
    const std::string command = std::string(TWINS_ADMIN_PATH) + " " + args + " <" + dir_.sub("stdin") + " >" +
                                dir_.sub("stdout") + " 2>" + dir_.sub("stderr");
    AdminOutcome run;
    const int status = std::system(command.c_str());
    run.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    run.out = ReadFile(dir_.sub("stdout"));
    run.err = ReadFile(dir_.sub("stderr"));
    return run;
  }

  // `db`: a directory, or a URI with its options ("URI --password-file F").
  std::string Export(const std::string& db) {
    AdminOutcome run = Admin("export --db " + db);
    EXPECT_EQ(run.status, 0) << run.err;
    return run.out;
  }

  // Written by the engine over `store`: documents of several twins (one deleted, so the log
  // has more entries than versions: seq 7), a _config, odd numbers and strings, watches.
  static void MakeTwins(std::unique_ptr<DocumentStore> store) {
    Engine engine(std::move(store), Limits());
    auto put = [&](const std::string& twin, const std::string& doc, const std::string& data) {
      auto request = ParseWriteRequest(R"({"data":)" + data + "}", engine.limits());
      ASSERT_TRUE(request.ok()) << request.status().message();
      auto written = engine.Put(twin, doc, *request);
      ASSERT_TRUE(written.ok()) << written.status().message();
    };
    put("device-1", "state", R"({"temp":21.5,"on":true})");
    put("device-1", "state", R"({"temp":1e300,"big":12345678901234567890,"neg":-0.001})");
    put("device-1", "desired", R"({"text":"caf\u00e9 \"quoted\" \\ \n","list":[1,[2,{"x":"y"}]]})");
    put("device-1", "_config", R"({"documents":{}})");
    put("dévice 2", "state", R"({})");
    put("dévice 2", "gone", R"({"a":1})");
    ASSERT_TRUE(engine.Delete("dévice 2", "gone", VersionCondition()).ok());
    ASSERT_TRUE(engine.Watch("device-1", "desired", "client-1", "1me").ok());
    ASSERT_TRUE(engine.Watch("dévice 2", "state", "client \"2\"", "0a").ok());
    ASSERT_TRUE(engine.Sync().ok());
  }

  // What check (`check`) and export (`exported`) say of MakeTwins' twins once, behind the
  // engine's back, device-1/state is at version 9 (its change made 2), dévice 2/gone is back
  // at version 1 (its change deleted it), and device-3/state holds "not json".
  static void ExpectTheBrokenTwins(const AdminOutcome& check, const AdminOutcome& exported) {
    EXPECT_EQ(check.status, 1);
    EXPECT_NE(check.out.find("problems 3\n"), std::string::npos) << check.out;
    EXPECT_NE(check.err.find("problem: document device-1/state is at version 9, but its latest change (seq 2) made "
                             "version 2"),
              std::string::npos)
        << check.err;
    EXPECT_NE(check.err.find("problem: document dévice 2/gone exists at version 1, but its latest change (seq 7) "
                             "deleted it"),
              std::string::npos)
        << check.err;
    EXPECT_NE(check.err.find("problem: document device-3/state: data is not JSON"), std::string::npos) << check.err;
    EXPECT_EQ(exported.status, 1);
    EXPECT_NE(exported.err.find("document device-3/state: data is not JSON"), std::string::npos) << exported.err;
  }

  // MakeTwins into a RocksDB database at `path`.
  static void MakeDatabase(const std::string& path) {
    auto store = OpenRocksDbStore(path);
    ASSERT_TRUE(store.ok()) << store.status().message();
    MakeTwins(std::move(store).value());
  }

  TempDir dir_;
};

}  // namespace twins::test
