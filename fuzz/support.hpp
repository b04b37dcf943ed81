// What the fuzz targets share: invariant checks that hold whatever NDEBUG says, the split of an
// input into lines, and an in-memory DocumentStore for the targets that run the engine.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/document_store.hpp"

namespace twins::fuzz {

[[noreturn]] inline void Fail(const char* what, const char* file, int line, const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz invariant broken: %s\n%s\n", file, line, what, detail.c_str());
  std::abort();
}

}  // namespace twins::fuzz

// An invariant of a target; a broken one aborts, which libFuzzer reports as a crash.
#define FUZZ_CHECK(cond) ((cond) ? (void)0 : ::twins::fuzz::Fail(#cond, __FILE__, __LINE__, std::string()))
#define FUZZ_CHECK_EQ(a, b)                                           \
  ((a) == (b) ? (void)0                                               \
              : ::twins::fuzz::Fail(#a " == " #b, __FILE__, __LINE__, \
                                    "left:  " + std::string(a) + "\nright: " + std::string(b)))

namespace twins::fuzz {

// One input of the target; defined by each target, called by entry.cpp. Returns normally
// unless an invariant breaks (FUZZ_CHECK aborts) or a sanitizer reports.
void FuzzOne(std::string_view input);

// The input cut at its first `count - 1` newlines; nullopt when it has fewer. Multi-part
// inputs are lines so that seeds stay readable.
inline std::optional<std::vector<std::string_view>> Lines(std::string_view text, size_t count) {
  std::vector<std::string_view> lines;
  while (lines.size() + 1 < count) {
    const size_t newline = text.find('\n');
    if (newline == std::string_view::npos) return std::nullopt;
    lines.push_back(text.substr(0, newline));
    text.remove_prefix(newline + 1);
  }
  lines.push_back(text);
  return lines;
}

// `data` as the body of a put or patch.
inline std::string Body(std::string_view data) { return "{\"data\":" + std::string(data) + "}"; }

// Documents in a map: the engine over it behaves as over RocksDB, without a disk. One thread
// only (a target runs one input at a time).
class MemoryStore final : public DocumentStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view twin, std::string_view doc) const override {
    auto found = documents_.find({std::string(twin), std::string(doc)});
    if (found == documents_.end()) return std::optional<StoredDocument>();
    return std::optional<StoredDocument>(found->second);
  }
  Status Write(std::vector<DocumentWrite> writes) override {
    for (DocumentWrite& write : writes) {
      if (write.document) {
        documents_[{write.twin, write.doc}] = std::move(*write.document);
      } else {
        documents_.erase({write.twin, write.doc});
      }
    }
    return Status::Ok();
  }
  Result<std::vector<std::string>> List(std::string_view twin) const override {
    std::vector<std::string> names;
    for (const auto& entry : documents_) {
      if (entry.first.first == twin) names.push_back(entry.first.second);
    }
    return names;
  }
  Status DeleteAll(std::string_view twin) override {
    for (auto it = documents_.begin(); it != documents_.end();) {
      it = it->first.first == twin ? documents_.erase(it) : std::next(it);
    }
    return Status::Ok();
  }
  Status Sync() override { return Status::Ok(); }

 private:
  std::map<std::pair<std::string, std::string>, StoredDocument> documents_;
};

}  // namespace twins::fuzz
