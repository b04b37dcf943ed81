#include "tsdb/target.hpp"

#include <curl/curl.h>

#include <cstdlib>
#include <memory>
#include <optional>

namespace twins {
namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};

Status Invalid(const std::string& why) { return Status::InvalidArgument("graphite_url", "graphite_url: " + why); }

// One part of a parsed URL; nullopt when the URL does not have it.
std::optional<std::string> Part(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* text = nullptr;
  if (curl_url_get(url, part, &text, flags) != CURLUE_OK || text == nullptr) return std::nullopt;
  std::string out(text);
  curl_free(text);
  return out;
}

Result<GraphiteTarget> CarbonTarget(CURLU* url, const std::string& host) {
  if (Part(url, CURLUPART_USER) || Part(url, CURLUPART_PASSWORD)) return Invalid("tcp:// takes no credentials");
  if (Part(url, CURLUPART_PATH).value_or("/") != "/") return Invalid("tcp:// takes no path");
  if (Part(url, CURLUPART_QUERY)) return Invalid("tcp:// takes no query");
  auto port = Part(url, CURLUPART_PORT);
  if (!port) return Invalid("tcp:// needs a port, e.g. tcp://graphite.example:2003");
  const long number = std::strtol(port->c_str(), nullptr, 10);
  if (number < 1 || number > 65535) return Invalid("port must be 1 to 65535");

  GraphiteTarget target;
  target.kind = GraphiteTarget::Kind::kCarbonTcp;
  target.host = host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  target.port = static_cast<uint16_t>(number);
  target.display = "tcp://" + host + ":" + *port;
  return target;
}

Result<GraphiteTarget> HttpTarget(CURLU* url) {
  auto user = Part(url, CURLUPART_USER, CURLU_URLDECODE);
  auto password = Part(url, CURLUPART_PASSWORD, CURLU_URLDECODE);
  if (!user || user->empty() || !password || password->empty()) {
    return Invalid("http(s):// needs credentials, e.g. https://USER:TOKEN@host/path");
  }
  GraphiteTarget target;
  target.kind = GraphiteTarget::Kind::kHttp;
  target.user = std::move(*user);
  target.password = std::move(*password);
  if (curl_url_set(url, CURLUPART_USER, nullptr, 0) != CURLUE_OK ||
      curl_url_set(url, CURLUPART_PASSWORD, nullptr, 0) != CURLUE_OK) {
    return Status::Internal("graphite_url: cannot strip the credentials");
  }
  auto bare = Part(url, CURLUPART_URL);
  if (!bare) return Status::Internal("graphite_url: cannot rebuild the URL");
  target.url = *bare;
  target.display = *bare;
  return target;
}

}  // namespace

Result<GraphiteTarget> ParseGraphiteUrl(std::string_view text) {
  if (text.empty()) return Invalid("empty; expected tcp://host:port or https://USER:TOKEN@host/path");
  for (char c : text) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) return Invalid("contains a space or control character");
  }
  std::unique_ptr<CURLU, UrlDeleter> url(curl_url());
  if (!url) return Status::Internal("graphite_url: out of memory");
  const std::string copy(text);
  CURLUcode code = curl_url_set(url.get(), CURLUPART_URL, copy.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (code != CURLUE_OK) return Invalid(std::string("not a URL (") + curl_url_strerror(code) + ")");

  const std::string scheme = Part(url.get(), CURLUPART_SCHEME).value_or("");
  auto host = Part(url.get(), CURLUPART_HOST);
  if (!host || host->empty()) return Invalid("has no host");
  if (Part(url.get(), CURLUPART_FRAGMENT)) return Invalid("takes no #fragment");
  if (scheme == "tcp") return CarbonTarget(url.get(), *host);
  if (scheme == "http" || scheme == "https") return HttpTarget(url.get());
  return Invalid("unknown scheme \"" + scheme + "\"; expected tcp, http or https");
}

}  // namespace twins
