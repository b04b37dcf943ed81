// The six twin endpoints of the contract, over the engine: bodies, ETags, conditions.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <utility>

#include "engine.hpp"
#include "http.hpp"
#include "log.hpp"

namespace twins {

class TwinEndpoints {
 public:
  TwinEndpoints(Engine& engine, LogFn log) : engine_(engine), log_(std::move(log)) {}

  HttpResponse List(std::string_view twin) const;
  HttpResponse DeleteAll(std::string_view twin) const;
  HttpResponse Get(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Put(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Patch(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Delete(HttpRequest& request, std::string_view twin, std::string_view doc) const;

 private:
  using WriteFn = std::function<Result<Document>(uint64_t expected_version)>;

  HttpResponse Write(HttpRequest& request, std::string_view twin, std::string_view doc, bool patch) const;
  HttpResponse WriteIfMatch(HttpRequest& request, std::string_view twin, std::string_view doc, uint64_t body_version,
                            const WriteFn& write, bool reply_document) const;
  HttpResponse Reply(const Result<Document>& result, std::string_view twin, std::string_view doc,
                     bool reply_document) const;

  Engine& engine_;
  LogFn log_;
};

}  // namespace twins
