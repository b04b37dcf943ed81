// The engine's cost per operation on a ~1 KiB document, RocksDB (WAL on, no fsync) underneath.
// Run: build/bench/engine_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/engine.hpp"
#include "engine/merge.hpp"

namespace twins {
namespace {

// ~1 KiB of data shaped like a device's state: nested objects, numbers, strings, an array.
std::string KilobyteData(int seed) {
  std::string data = "{\"device\":{\"model\":\"thermo-3000\",\"firmware\":\"4.2." + std::to_string(seed) + "\"},";
  for (int i = 0; i < 12; ++i) {
    data += "\"sensor" + std::to_string(i) + "\":{\"value\":" + std::to_string(20 + (seed + i) % 7) +
            ".5,\"unit\":\"celsius\",\"ok\":true,\"history\":[1,2,3]},";
  }
  data += "\"tags\":[\"a\",\"b\",\"c\"]}";
  return data;
}

class EngineFixture : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State&) override {
    char pattern[] = "/tmp/twins-bench-XXXXXX";
    dir_ = mkdtemp(pattern);
    auto store = OpenRocksDbStore(dir_ + "/db");
    if (!store.ok()) std::abort();
    engine_ = std::make_unique<Engine>(std::move(store).value(), Limits());
    for (int twin = 0; twin < 64; ++twin) {
      if (!engine_->Put(Twin(twin), "state", Body(KilobyteData(twin))).ok()) std::abort();
    }
  }
  void TearDown(const benchmark::State&) override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

 protected:
  static std::string Twin(int i) { return "device-" + std::to_string(i); }
  WriteRequest Body(const std::string& data) {
    return std::move(ParseWriteRequest("{\"data\":" + data + "}", Limits())).value();
  }

  void Writes(benchmark::State& state, bool patch, Durability durability);

  std::string dir_;
  std::unique_ptr<Engine> engine_;
};

BENCHMARK_F(EngineFixture, Get)(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    auto doc = engine_->Get(Twin(i++ % 64), "state");
    benchmark::DoNotOptimize(DocumentJson(doc.value()));
  }
}

// Reading a ~1 KiB put body alone: checks and the stored form, the bulk of a put's own cost.
static void ParseBody(benchmark::State& state) {
  const std::string body = "{\"version\":0,\"data\":" + KilobyteData(1) + "}";
  for (auto _ : state) benchmark::DoNotOptimize(ParseWriteRequest(body, Limits()));
}
BENCHMARK(ParseBody);

// The same for a patch body changing one number: the request a device sends most.
static void ParsePatchBody(benchmark::State& state) {
  const std::string body = "{\"version\":0,\"data\":{\"sensor3\":{\"value\":12345}}}";
  for (auto _ : state) benchmark::DoNotOptimize(ParseWriteRequest(body, Limits()));
}
BENCHMARK(ParsePatchBody);

// Merging that patch into the stored ~1 KiB text, the patch's own share of a write.
static void MergeIntoDocument(benchmark::State& state) {
  const std::string target = KilobyteData(1);
  const std::string patch = "{\"sensor3\":{\"value\":12345}}";
  for (auto _ : state) {
    std::string out;
    benchmark::DoNotOptimize(MergePatch(target, patch, &out));
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(MergeIntoDocument);

// One write per iteration, request body parsed included, as the broker does for every one.
// Durability::kAtSync is the broker's way: writes acknowledged at the next Sync(), one Sync()
// per 32 writes; kBeforeReturn, REST's: a log write per request.
void EngineFixture::Writes(benchmark::State& state, bool patch, Durability durability) {
  const std::string put_body = "{\"data\":" + KilobyteData(1) + "}";
  int i = 0;
  for (auto _ : state) {
    // A patch changes one number of the ~1 KiB document.
    auto request = ParseWriteRequest(
        patch ? "{\"data\":{\"sensor3\":{\"value\":" + std::to_string(i) + "}}}" : put_body, Limits());
    const std::string twin = Twin(i++ % 64);
    auto doc = patch ? engine_->Patch(twin, "state", request.value(), durability)
                     : engine_->Put(twin, "state", request.value(), durability);
    benchmark::DoNotOptimize(DocumentJson(doc.value()));
    if (durability == Durability::kAtSync && i % 32 == 0 && !engine_->Sync().ok()) std::abort();
  }
}

BENCHMARK_F(EngineFixture, Put)(benchmark::State& state) { Writes(state, false, Durability::kBeforeReturn); }
BENCHMARK_F(EngineFixture, Patch)(benchmark::State& state) { Writes(state, true, Durability::kBeforeReturn); }
BENCHMARK_F(EngineFixture, PutGroupCommit)(benchmark::State& state) { Writes(state, false, Durability::kAtSync); }
BENCHMARK_F(EngineFixture, PatchGroupCommit)(benchmark::State& state) { Writes(state, true, Durability::kAtSync); }

}  // namespace
}  // namespace twins

BENCHMARK_MAIN();
