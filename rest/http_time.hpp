// Times as HTTP writes them, built by hand because strftime follows the process locale.
#pragma once

#include <cstdint>
#include <string>

namespace twins {

// IMF-fixdate (RFC 9110 section 5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT", of a Unix time in seconds.
std::string HttpDate(int64_t unix_seconds);

}  // namespace twins
