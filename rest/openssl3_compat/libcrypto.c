/* Carries the soname "libcrypto.so" that libcivetweb loads at run time, and depends on the real
 * libcrypto.so.3, so TLS works without the libssl-dev package (which owns the unversioned
 * libcrypto.so link). See libssl.c. */
#include <openssl/crypto.h>

/* The library exists for its soname and its dependency; this keeps the linker from dropping it. */
const char *twins_openssl3_compat_version(void);
const char *twins_openssl3_compat_version(void) { return OpenSSL_version(OPENSSL_VERSION); }
