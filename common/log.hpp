// How components other than the broker glue report events: they call a LogFn, and the
// plugin decides where the line goes (mosquitto's log, on the broker thread). Tests pass
// a function that records lines.
#pragma once

#include <functional>
#include <string>

namespace twins {

enum class LogLevel { kInfo, kWarning, kError };

// May be called from any thread.
using LogFn = std::function<void(LogLevel level, const std::string& message)>;

}  // namespace twins
