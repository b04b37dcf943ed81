// The six twin endpoints of the contract, over the engine: bodies, ETags, conditions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>

#include "engine/engine.hpp"
#include "rest/http.hpp"
#include "common/log.hpp"
#include "engine/rate_limiter.hpp"

namespace twins {

class TwinEndpoints {
 public:
  // `write_limiter` admits writes per twin id; it must outlive the endpoints.
  TwinEndpoints(Engine& engine, RateLimiter& write_limiter, LogFn log)
      : engine_(engine), write_limiter_(write_limiter), log_(std::move(log)) {}

  HttpResponse List(std::string_view twin) const;
  HttpResponse DeleteAll(std::string_view twin) const;
  HttpResponse Get(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Put(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Patch(HttpRequest& request, std::string_view twin, std::string_view doc) const;
  HttpResponse Delete(HttpRequest& request, std::string_view twin, std::string_view doc) const;

 private:
  enum class WriteMode { kPut, kPatch };
  HttpResponse Write(HttpRequest& request, std::string_view twin, std::string_view doc, WriteMode mode) const;

  // A 429 reply when the twin has used up its writes, else nothing.
  std::optional<HttpResponse> Throttle(std::string_view twin, std::string_view doc) const;

  Engine& engine_;
  RateLimiter& write_limiter_;
  LogFn log_;
};

}  // namespace twins
