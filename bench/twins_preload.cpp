// twins_preload: fills a twins database for the scale run, straight through the engine (the
// same validation and record format as the broker), far faster than 100 000 MQTT connections.
//
//   twins_preload DB_PATH TWINS [DOCUMENTS=3] [PREFIX=bench-] [THREADS=2]
//
// Twin i is PREFIX<i>; its documents are "state", "doc1", "doc2", ... each ~1 KiB, version 1.
// The broker must not have the database open.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.hpp"

namespace {

// ~1 KiB, varying with the seed so that compression sees realistic, not identical, records.
std::string KilobyteData(long seed) {
  std::string data = "{\"device\":{\"model\":\"thermo-3000\",\"firmware\":\"4.2." + std::to_string(seed) + "\"},";
  for (int i = 0; i < 12; ++i) {
    data += "\"sensor" + std::to_string(i) + "\":{\"value\":" + std::to_string(20 + (seed + i) % 7) + "." +
            std::to_string((seed * 7 + i) % 10) + ",\"unit\":\"celsius\",\"ok\":true,\"history\":[1,2,3]},";
  }
  return data + "\"tags\":[\"a\",\"b\",\"c\"]}";
}

// Writes twins first, first + step, ...; false (with a message) on the first failure.
bool Fill(twins::Engine& engine, const std::string& prefix, long first, long step, long twins, int documents) {
  for (long t = first; t < twins; t += step) {
    const std::string twin = prefix + std::to_string(t);
    for (int d = 0; d < documents; ++d) {
      auto request = twins::ParseWriteRequest("{\"data\":" + KilobyteData(t * documents + d) + "}", engine.limits());
      const std::string name = d == 0 ? "state" : "doc" + std::to_string(d);
      twins::Status status = request.ok() ? engine.Put(twin, name, request.value()).status() : request.status();
      if (!status.ok()) {
        std::fprintf(stderr, "twins_preload: %s/%s: %s\n", twin.c_str(), name.c_str(), status.message().c_str());
        return false;
      }
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: twins_preload DB_PATH TWINS [DOCUMENTS=3] [PREFIX=bench-] [THREADS=2]\n");
    return 2;
  }
  const std::string path = argv[1];
  const long twins = std::atol(argv[2]);
  const int documents = argc > 3 ? std::atoi(argv[3]) : 3;
  const std::string prefix = argc > 4 ? argv[4] : "bench-";
  const int threads = argc > 5 ? std::atoi(argv[5]) : 2;

  auto store = twins::OpenRocksDbStore(path);
  if (!store.ok()) {
    std::fprintf(stderr, "twins_preload: %s\n", store.status().message().c_str());
    return 1;
  }
  twins::Engine engine(std::move(store).value(), twins::Limits());
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  std::vector<char> ok(threads, 0);
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&, i] { ok[i] = Fill(engine, prefix, i, threads, twins, documents); });
  }
  for (auto& worker : workers) worker.join();
  for (char worked : ok) {
    if (!worked) return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "twins_preload: %ld twins x %d documents in %.1f s\n", twins, documents, seconds);
  return 0;
}
