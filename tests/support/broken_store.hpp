// Stores that fail, for the internal-error paths of both APIs: BrokenStore fails every call as
// a broken disk would, ThrowingStore breaks the no-exception rule on reads.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "store/document_store.hpp"

namespace twins::test {

class BrokenStore : public DocumentStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override { return Fail(); }
  Status Write(std::vector<DocumentWrite>) override { return Fail(); }
  Result<std::vector<std::string>> List(std::string_view) const override { return Fail(); }
  Status DeleteAll(std::string_view) override { return Fail(); }
  Status Sync() override { return Fail(); }

 private:
  static Status Fail() { return Status::Internal("IO error: disk on fire"); }
};

class ThrowingStore : public BrokenStore {
 public:
  Result<std::optional<StoredDocument>> Get(std::string_view, std::string_view) const override {
    throw std::runtime_error("store exploded");
  }
};

}  // namespace twins::test
