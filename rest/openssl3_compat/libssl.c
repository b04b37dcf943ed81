/* Debian 12's libcivetweb 1.15 loads "libssl.so" at run time and asks it for the OpenSSL 1.1
 * function SSL_get_peer_certificate, which OpenSSL 3 renamed SSL_get1_peer_certificate (same
 * semantics: the caller owns a reference). This library carries the soname "libssl.so",
 * depends on the real libssl.so.3 for every other symbol, and adds that one name. It is
 * loaded by absolute path before CivetWeb starts TLS (rest/openssl3_compat.cpp). */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate
X509 *SSL_get_peer_certificate(const SSL *ssl);

X509 *SSL_get_peer_certificate(const SSL *ssl) { return SSL_get1_peer_certificate(ssl); }
