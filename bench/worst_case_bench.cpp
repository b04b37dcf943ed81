// The cost of the worst request shapes a device can send within the default limits, through
// the code path of the broker thread: ParseWriteRequest, then Engine::Put/Patch with
// Durability::kAtSync (one Sync() per 32 accepted writes), with the Graphite observer
// installed where the shape is about `_config`. One request per iteration.
// Run: build/bench/worst_case_bench
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "engine/engine.hpp"
#include "tsdb/observer.hpp"

namespace twins {
namespace {

// Distinct keys of `width` lower-case letters: "aaa", "aab", ...
std::string Key(int i, int width) {
  std::string key(width, 'a');
  for (int pos = width - 1; pos >= 0; --pos, i /= 26) key[pos] = static_cast<char>('a' + i % 26);
  return key;
}

// {"<prefix><key>":0,...} with `count` members.
std::string Members(int count, int width, const std::string& prefix = "") {
  std::string data = "{";
  for (int i = 0; i < count; ++i) data += (i ? ",\"" : "\"") + prefix + Key(i, width) + "\":0";
  return data + "}";
}

std::string Body(const std::string& data) { return "{\"data\":" + data + "}"; }

// {"a":[v,v,...]} with `count` numbers.
std::string NumberArray(int count, int value) {
  const std::string number = std::to_string(value);
  std::string data = "{\"a\":[" + number;
  for (int i = 1; i < count; ++i) data += "," + number;
  return data + "]}";
}

// Counts and drops the samples: the cost measured is the broker thread's.
class DroppingSink : public SampleSink {
 public:
  void Push(std::vector<Sample> samples) noexcept override { pushed += samples.size(); }
  std::atomic<size_t> pushed{0};
};

class WorstCase : public benchmark::Fixture {
 public:
  void SetUp(const benchmark::State&) override {
    char pattern[] = "/tmp/twins-worst-XXXXXX";
    dir_ = mkdtemp(pattern);
    auto store = OpenRocksDbStore(dir_ + "/db");
    if (!store.ok()) std::abort();
    engine_ = std::make_unique<Engine>(std::move(store).value(), Limits());
  }
  void TearDown(const benchmark::State&) override {
    if (observer_) engine_->RemoveObserver(observer_.get());
    observer_.reset();
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }

 protected:
  void Observe() {
    observer_ = std::make_unique<TsdbObserver>(sink_);
    engine_->AddObserver(observer_.get());
  }
  void MustWrite(const std::string& doc, const std::string& data, bool patch = false) {
    auto request = ParseWriteRequest(Body(data), engine_->limits());
    if (!request.ok()) std::abort();
    auto written = patch ? engine_->Patch("device", doc, *request) : engine_->Put("device", doc, *request);
    if (!written.ok()) {
      fprintf(stderr, "setup write refused: %s\n", written.status().message().c_str());
      std::abort();
    }
  }
  // One request per iteration, as the broker thread runs it; `accepted` checks the outcome.
  void Requests(benchmark::State& state, const std::string& doc, const std::string& body, bool patch, bool accepted) {
    const std::string bodies[2] = {body, body};
    Requests(state, doc, bodies, patch, accepted);
  }
  // Alternating between two bodies, so that on-change triggers see every value change.
  void Requests(benchmark::State& state, const std::string& doc, const std::string (&bodies)[2], bool patch,
                bool accepted) {
    sink_.pushed = 0;
    int i = 0;
    for (auto _ : state) {
      const std::string& body = bodies[i % 2];
      auto request = ParseWriteRequest(body, engine_->limits());
      bool ok = request.ok();
      if (ok) {
        auto written = patch ? engine_->Patch("device", doc, *request, Durability::kAtSync)
                             : engine_->Put("device", doc, *request, Durability::kAtSync);
        ok = written.ok();
      }
      if (ok != accepted) {
        state.SkipWithError("unexpected outcome");
        break;
      }
      if (ok && ++i % 32 == 0 && !engine_->Sync().ok()) std::abort();
    }
    if (!engine_->Sync().ok()) std::abort();
    state.counters["body_bytes"] = static_cast<double>(bodies[0].size());
    state.counters["points"] = benchmark::Counter(static_cast<double>(sink_.pushed),
                                                  benchmark::Counter::kAvgIterations);
  }

  // An on-update trigger on "doc", which feeds the twin's 1 000 series (the default limit)
  // from leaves that the benchmarks' writes replace.
  void FeedSeriesLimitFromOtherLeaves() {
    MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-update\"}}}");
    Observe();
    std::string other = "{\"b\":[0";
    for (int i = 1; i < 1000; ++i) other += ",0";
    MustWrite("doc", other + "]}");
  }

  // {"kkk…":[0,0,…]}: a 32 000-byte key and ~15 000 numbers.
  static std::string LongKeyArray() {
    std::string data = "{\"" + std::string(32000, 'k') + "\":[0";
    for (int i = 1; i < 15000; ++i) data += ",0";
    return data + "]}";
  }

  // A patch naming every one of ~6 500 escaped keys, under an on-change trigger, in the order
  // they are stored or the reverse.
  void PatchEveryEscapedKeyOnChange(benchmark::State& state, bool reversed) {
    MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\"}}}");
    std::string stored = "{";
    std::string patches[2] = {"{", "{"};
    for (int i = 0; i < 6500; ++i) {
      const std::string separator = i ? ",\"\\n" : "\"\\n";
      stored += separator + Key(i, 3) + "\":0";
      const std::string key = separator + Key(reversed ? 6499 - i : i, 3);
      patches[0] += key + "\":1";
      patches[1] += key + "\":0";
    }
    MustWrite("doc", stored + "}");
    Observe();
    const std::string bodies[2] = {Body(patches[0] + "}"), Body(patches[1] + "}")};
    Requests(state, "doc", bodies, true, true);
  }

  std::string dir_;
  std::unique_ptr<Engine> engine_;
  DroppingSink sink_;
  std::unique_ptr<TsdbObserver> observer_;
};

// A body at the request limit with ~16 800 distinct keys (refused: larger than a document).
BENCHMARK_F(WorstCase, PutManyKeysOverLimit)(benchmark::State& state) {
  Requests(state, "doc", Body(Members(16800, 3)), false, false);
}

// The most distinct keys a document may hold (~7 000), accepted.
BENCHMARK_F(WorstCase, PutManyKeys)(benchmark::State& state) {
  Requests(state, "doc", Body(Members(7000, 4)), false, true);
}

// ~7 000 keys written with escapes (\u0061 for 'a'), accepted.
BENCHMARK_F(WorstCase, PutManyEscapedKeys)(benchmark::State& state) {
  std::string data = "{";
  for (int i = 0; i < 5000; ++i) data += (i ? ",\"\\u0061" : "\"\\u0061") + Key(i, 3) + "\":0";
  Requests(state, "doc", Body(data + "}"), false, true);
}

// A stored document of ~6 500 keys holding escapes, patched with 8 000 new keys (refused:
// the merge is larger than a document).
BENCHMARK_F(WorstCase, PatchManyKeysIntoEscapedDocumentOverLimit)(benchmark::State& state) {
  std::string stored = "{";
  for (int i = 0; i < 6500; ++i) stored += (i ? ",\"\\n" : "\"\\n") + Key(i, 3) + "\":0";
  MustWrite("doc", stored + "}");
  Requests(state, "doc", Body(Members(8000, 4, "x")), true, false);
}

// A patch naming every one of ~6 500 escaped keys of the stored document, accepted.
BENCHMARK_F(WorstCase, PatchEveryKeyOfEscapedDocument)(benchmark::State& state) {
  std::string stored = "{";
  std::string patch = "{";
  for (int i = 0; i < 6500; ++i) {
    stored += (i ? ",\"\\n" : "\"\\n") + Key(i, 3) + "\":0";
    patch += (i ? ",\"\\n" : "\"\\n") + Key(i, 3) + "\":1";
  }
  MustWrite("doc", stored + "}");
  Requests(state, "doc", Body(patch + "}"), true, true);
}

// Nesting at the depth limit, as many times as fits: [[[...]]],[[[...]]],...
BENCHMARK_F(WorstCase, PutDeepNesting)(benchmark::State& state) {
  const std::string chain = std::string(30, '[') + "0" + std::string(30, ']');
  std::string data = "{\"a\":[";
  for (int i = 0; i < 1000; ++i) data += (i ? "," : "") + chain;
  Requests(state, "doc", Body(data + "]}"), false, true);
}

// 1000 levels, refused (deeper than max_depth).
BENCHMARK_F(WorstCase, PutTooDeep)(benchmark::State& state) {
  Requests(state, "doc", Body("{\"a\":" + std::string(998, '[') + std::string(998, ']') + "}"), false, false);
}

// An array of ~32 000 numbers, accepted.
BENCHMARK_F(WorstCase, PutLongArray)(benchmark::State& state) {
  std::string data = "{\"a\":[0";
  for (int i = 1; i < 32000; ++i) data += ",0";
  Requests(state, "doc", Body(data + "]}"), false, true);
}

// The largest `_config` the limits allow (max_config_bytes; 56 KiB, ~1 000 documents, before
// it had a limit of its own), Graphite on: a one-number patch of a document with a trigger.
BENCHMARK_F(WorstCase, PatchWithLargeConfig)(benchmark::State& state) {
  const size_t kConfigBytes = Limits().max_config_bytes;
  std::string config = "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-update\"}";
  for (int i = 0; config.size() + 60 < kConfigBytes; ++i) {
    config += ",\"d" + Key(i, 4) + "\":{\"_tsdb_trigger\":\"on-change\",\"_tags\":{\"site\":\"lyon\"}}";
  }
  MustWrite("_config", config + "}}");
  MustWrite("doc", "{\"value\":1}");
  Observe();
  Requests(state, "doc", Body("{\"value\":2}"), true, true);
}

// An on-update trigger on the whole document, and a put of ~32 000 numbers in an array:
// a point per number, or as many as the series limit lets through.
BENCHMARK_F(WorstCase, PutLongArrayWithTrigger)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-update\"}}}");
  Observe();
  std::string data = "{\"a\":[0";
  for (int i = 1; i < 32000; ++i) data += ",0";
  Requests(state, "doc", Body(data + "]}"), false, true);
}

// The same array under an on-change trigger, every number changed: each is compared with
// the number at its index before.
BENCHMARK_F(WorstCase, PutLongArrayOnChange)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\"}}}");
  MustWrite("doc", NumberArray(32000, 1));
  Observe();
  const std::string bodies[2] = {Body(NumberArray(32000, 2)), Body(NumberArray(32000, 1))};
  Requests(state, "doc", bodies, false, true);
}

// A patch replacing the array whole, under an on-update trigger.
BENCHMARK_F(WorstCase, PatchLongArrayWithTrigger)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-update\"}}}");
  MustWrite("doc", "{\"b\":1}");
  Observe();
  Requests(state, "doc", Body(NumberArray(32000, 0)), true, true);
}

// The twin already feeds its 1 000 series from other leaves of this document, which the write
// does not reach: the series limit never closes early, every number is looked up and dropped.
BENCHMARK_F(WorstCase, PutLongArrayWithTriggerAtSeriesLimit)(benchmark::State& state) {
  FeedSeriesLimitFromOtherLeaves();
  Requests(state, "doc", Body(NumberArray(32000, 0)), false, true);
}

// 7 000 keys under an on-change trigger, every value changed: each key found in the stored
// document.
BENCHMARK_F(WorstCase, PutManyKeysOnChange)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\"}}}");
  MustWrite("doc", Members(7000, 4));
  Observe();
  std::string changed = Members(7000, 4);
  for (size_t at = changed.find(":0"); at != std::string::npos; at = changed.find(":0", at)) changed[++at] = '1';
  const std::string bodies[2] = {Body(changed), Body(Members(7000, 4))};
  Requests(state, "doc", bodies, false, true);
}

// A patch naming every one of ~6 500 escaped keys, under an on-change trigger.
BENCHMARK_F(WorstCase, PatchEveryEscapedKeyOnChange)(benchmark::State& state) {
  PatchEveryEscapedKeyOnChange(state, false);
}

// The same patch naming the keys in the reverse of their stored order: each is looked up
// through the indexes, not met in order.
BENCHMARK_F(WorstCase, PatchEveryEscapedKeyReversedOnChange)(benchmark::State& state) {
  PatchEveryEscapedKeyOnChange(state, true);
}

// A key as long as fits beside an array of ~15 000 numbers, under an on-update trigger: the
// leaves' json_paths are 32 KB long. Points are made of the first 1 000 (the series limit),
// then of the same 1 000 at each write.
BENCHMARK_F(WorstCase, PutLongKeyArrayWithTrigger)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-update\"}}}");
  Observe();
  Requests(state, "doc", Body(LongKeyArray()), false, true);
}

// The same at the series limit, fed from other leaves: no point made, each leaf looked up.
BENCHMARK_F(WorstCase, PutLongKeyArrayAtSeriesLimit)(benchmark::State& state) {
  FeedSeriesLimitFromOtherLeaves();
  Requests(state, "doc", Body(LongKeyArray()), false, true);
}

// Nesting at the depth limit under an on-change trigger: a chain of 16 objects whose every
// level holds, stored before the way down, a sibling of 120 arrays nested 14 deep; the put
// names the way down first, so each level's stored object is searched past a large member.
BENCHMARK_F(WorstCase, PutDeepNestingOnChange)(benchmark::State& state) {
  MustWrite("_config", "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\"}}}");
  auto document = [](int value) {
    const std::string chain = std::string(14, '[') + std::to_string(value) + std::string(14, ']');
    std::string sibling = "[";
    for (int i = 0; i < 120; ++i) sibling += (i ? "," : "") + chain;
    sibling += "]";
    std::string stored = "{\"v\":" + std::to_string(value) + "}", put = stored;
    for (int level = 0; level < 16; ++level) {
      stored = "{\"s\":" + sibling + ",\"z\":" + stored + "}";
      put = "{\"z\":" + put + ",\"s\":" + sibling + "}";
    }
    return std::make_pair(stored, put);
  };
  MustWrite("doc", document(1).first);
  Observe();
  const std::string bodies[2] = {Body(document(2).second), Body(document(1).second)};
  Requests(state, "doc", bodies, false, true);
}

// The largest `_config` (8 KiB) setting a trigger and tags on as many keys as fit, and a put
// of 7 000 keys among which they all are: a configuration lookup per key.
BENCHMARK_F(WorstCase, PutManyKeysWithLargeConfig)(benchmark::State& state) {
  const size_t kConfigBytes = Limits().max_config_bytes;
  std::string config = "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\"";
  int configured = 0;
  for (; config.size() + 70 < kConfigBytes; ++configured) {
    config += ",\"" + Key(configured * 37, 4) + "\":{\"_tsdb_trigger\":\"on-update\",\"_tags\":{\"s\":\"l\"}}";
  }
  MustWrite("_config", config + "}}}");
  MustWrite("doc", Members(7000, 4));
  Observe();
  Requests(state, "doc", Body(Members(7000, 4)), false, true);
  state.counters["configured_keys"] = configured;
}

// Not a worst case: the ordinary path the trigger work must not slow, a one-number patch of a
// ~1 KiB document (as engine_bench's) under on-change and on-update triggers with tags.
BENCHMARK_F(WorstCase, OrdinaryPatchWithTriggers)(benchmark::State& state) {
  MustWrite("_config",
            "{\"documents\":{\"doc\":{\"_tsdb_trigger\":\"on-change\",\"_tags\":{\"site\":\"lyon\"},"
            "\"sensor3\":{\"_tsdb_trigger\":\"on-update\"}}}}");
  std::string data = "{\"device\":{\"model\":\"thermo-3000\",\"firmware\":\"4.2.0\"},";
  for (int i = 0; i < 12; ++i) {
    data += "\"sensor" + std::to_string(i) + "\":{\"value\":" + std::to_string(20 + i % 7) +
            ".5,\"unit\":\"celsius\",\"ok\":true,\"history\":[1,2,3]},";
  }
  MustWrite("doc", data + "\"tags\":[\"a\",\"b\",\"c\"]}");
  Observe();
  const std::string bodies[2] = {Body("{\"sensor3\":{\"value\":21.5},\"sensor7\":{\"value\":1}}"),
                                 Body("{\"sensor3\":{\"value\":22.5},\"sensor7\":{\"value\":2}}")};
  Requests(state, "doc", bodies, true, true);
}

}  // namespace
}  // namespace twins

BENCHMARK_MAIN();
