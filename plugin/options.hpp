// plugin_opt_* settings: defaults first, then strict parsing. Every key is documented in
// mosquitto.conf.example.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "document_store.hpp"
#include "engine.hpp"
#include "status.hpp"

namespace twins {

inline RocksDbOptions DefaultStore() {
  RocksDbOptions store;
  store.path = "/var/lib/mosquitto/twins";
  return store;
}

struct PluginOptions {
  RocksDbOptions store = DefaultStore();
  Limits limits;

  std::string rest_listen = "127.0.0.1:8080";  // "off" disables the REST API
  int rest_threads = 4;
  std::string rest_region = "fr-par";
  std::string rest_tls_cert;
  std::vector<std::string> rest_tokens;        // rest_token and the lines of rest_tokens_file
  std::string rest_tokens_file;
  bool rest_allow_anonymous = false;

  std::string graphite_url;                    // empty: no time-series push
  size_t graphite_queue = 100000;              // points held while Graphite is unreachable
  size_t max_series_per_twin = 1000;           // distinct series one twin may feed
};

// Parses (key, value) pairs, keys without the "plugin_opt_" prefix. An unknown key or a bad
// value fails, and the message names the option.
Result<PluginOptions> ParseOptions(const std::vector<std::pair<std::string, std::string>>& pairs);

}  // namespace twins
