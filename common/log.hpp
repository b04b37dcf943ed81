// How components other than the broker glue report events: they call a LogFn, and the
// plugin decides where the line goes (mosquitto's log, on the broker thread). Tests pass
// a function that records lines.
#pragma once

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>

namespace twins {

enum class LogLevel { kInfo, kWarning, kError };

// May be called from any thread.
using LogFn = std::function<void(LogLevel level, const std::string& message)>;

// Internal errors (a database failure, an exception) are answered alike on MQTT and REST: the
// detail is logged under a short random id, and the client is told the id only, so that an
// operator can find the line while clients learn nothing of paths or database internals.
// Logs "<detail> (log id 1a2b3c4d)" and returns "internal error (log id 1a2b3c4d)".
inline std::string ReportInternalError(const LogFn& log, std::string_view detail) {
  thread_local std::mt19937 generator{std::random_device{}()};
  constexpr std::string_view kHex = "0123456789abcdef";
  uint32_t bits = generator();
  std::string id(8, '0');
  for (char& digit : id) {
    digit = kHex[bits & 0xfU];
    bits >>= 4U;
  }
  const std::string tag = "(log id " + id + ")";
  if (log) log(LogLevel::kError, std::string(detail) + " " + tag);
  return "internal error " + tag;
}

}  // namespace twins
