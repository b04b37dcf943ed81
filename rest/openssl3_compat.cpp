#include "rest/openssl3_compat.hpp"

#include <dlfcn.h>

namespace twins {

Status LoadOpenSsl3Compat(const std::string& dir) {
  // The handles stay open for the life of the process, as CivetWeb's own dlopen does.
  for (const char* name : {"libcrypto.so", "libssl.so"}) {
    const std::string path = dir + "/" + name;
    if (dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL) == nullptr) {
      const char* why = dlerror();
      return Status::InvalidArgument(
          "tls_cert", "TLS is not available: cannot load " + path + ": " + (why != nullptr ? why : "unknown error"));
    }
  }
  return Status::Ok();
}

}  // namespace twins
