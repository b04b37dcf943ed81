// Makes Debian 12's CivetWeb (built for OpenSSL 1.1) find OpenSSL 3: see openssl3_compat/.
#pragma once

#include <string>

#include "common/status.hpp"

namespace twins {

// Loads <dir>/libcrypto.so and <dir>/libssl.so, the compatibility libraries, so that
// CivetWeb's later dlopen("libssl.so") finds them by soname. Once per process; idempotent.
Status LoadOpenSsl3Compat(const std::string& dir);

}  // namespace twins
