#include "plugin/options.hpp"

#include <mosquitto.h>

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>

#include "plugin/broker_wake.hpp"

namespace twins {
namespace {

Status Bad(const std::string& key, const std::string& why) {
  return Status::InvalidArgument(key, "plugin_opt_" + key + ": " + why);
}

Status ParseUnsigned(const std::string& key, const std::string& value, unsigned long long min, unsigned long long max,
                     unsigned long long* out) {
  if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
    return Bad(key, "'" + value + "' is not a whole number");
  }
  errno = 0;
  unsigned long long v = std::strtoull(value.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min || v > max) {
    return Bad(key, value + " is out of range " + std::to_string(min) + ".." + std::to_string(max));
  }
  *out = v;
  return Status::Ok();
}

template <class T>
std::function<Status(const std::string&, const std::string&)> Number(T* target, unsigned long long min,
                                                                     unsigned long long max) {
  return [=](const std::string& key, const std::string& value) {
    unsigned long long v = 0;
    Status s = ParseUnsigned(key, value, min, max, &v);
    if (s.ok()) *target = static_cast<T>(v);
    return s;
  };
}

std::function<Status(const std::string&, const std::string&)> Bool(bool* target) {
  return [=](const std::string& key, const std::string& value) {
    if (value != "true" && value != "false") return Bad(key, "'" + value + "' is not true or false");
    *target = value == "true";
    return Status::Ok();
  };
}

std::function<Status(const std::string&, const std::string&)> Text(std::string* target) {
  return [=](const std::string& key, const std::string& value) {
    if (value.empty()) return Bad(key, "must not be empty");
    *target = value;
    return Status::Ok();
  };
}

}  // namespace

Result<PluginOptions> ParseOptions(const std::vector<std::pair<std::string, std::string>>& pairs) {
  PluginOptions o;
  size_t cache_mb = o.store.cache_bytes >> 20;
  uint64_t min_free_mb = o.store.min_free_bytes >> 20;
  uint64_t changelog_mb = o.store.changelog_bytes >> 20;
  const std::map<std::string, std::function<Status(const std::string&, const std::string&)>> parsers = {
      {"db_path", Text(&o.store.path)},
      {"sync_writes", Bool(&o.store.sync_writes)},
      {"cache_mb", Number(&cache_mb, 1, 1 << 20)},
      {"max_document_bytes", Number(&o.limits.max_document_bytes, 2, 64 << 20)},
      {"max_depth", Number(&o.limits.max_depth, 1, 256)},
      {"max_documents", Number(&o.limits.max_documents, 1, 1000000)},
      {"max_twins", Number(&o.limits.max_twins, 0, 1000000000)},
      {"min_free_mb", Number(&min_free_mb, 0, 1 << 30)},
      {"max_config_bytes", Number(&o.limits.max_config_bytes, 2, 64 << 20)},
      {"rest_listen", Text(&o.rest_listen)},
      {"rest_threads", Number(&o.rest_threads, 1, 256)},
      {"rest_region", Text(&o.rest_region)},
      {"rest_tls_cert", Text(&o.rest_tls_cert)},
      {"rest_token",
       [&o](const std::string& key, const std::string& value) {
         if (value.empty()) return Bad(key, "must not be empty");
         o.rest_tokens.push_back(value);
         return Status::Ok();
       }},
      {"rest_tokens_file", Text(&o.rest_tokens_file)},
      {"rest_request_timeout_ms", Number(&o.rest_request_timeout_ms, 100, 600000)},
      {"rest_auth_failures", Number(&o.rest_auth_failures, 0, 1000000)},
      {"rest_max_streams", Number(&o.rest_max_streams, 1, 1024)},
      {"rest_stream_max_lag", Number(&o.rest_stream_max_lag, 1, 100000000)},
      {"rest_cors_origins",
       [&o](const std::string& key, const std::string& value) {
         // Space- or comma-separated; the line may be repeated.
         size_t start = 0;
         while ((start = value.find_first_not_of(" ,\t", start)) != std::string::npos) {
           const size_t end = value.find_first_of(" ,\t", start);
           std::string origin = value.substr(start, end - start);
           const size_t scheme = origin.find("://");
           if (scheme == std::string::npos || scheme == 0 || origin.size() == scheme + 3 ||
               origin.find('/', scheme + 3) != std::string::npos) {
             return Bad(key, "'" + origin + "' is not an origin (scheme://host[:port], no path)");
           }
           o.rest_cors_origins.push_back(std::move(origin));
           start = end;
         }
         if (o.rest_cors_origins.empty()) return Bad(key, "must not be empty");
         return Status::Ok();
       }},
      {"rest_allow_anonymous", Bool(&o.rest_allow_anonymous)},
      {"metrics_allow_anonymous", Bool(&o.metrics_allow_anonymous)},
      {"changelog_mb", Number(&changelog_mb, 1, 1 << 20)},
      {"store",
       [&o](const std::string& key, const std::string& value) {
         // A libpq URI only: its key=value form would let a typo pass for a database name.
         if (value.rfind("postgresql://", 0) != 0 && value.rfind("postgres://", 0) != 0) {
           return Bad(key, "must be a postgresql:// URI (leave it unset for RocksDB at db_path)");
         }
         o.postgres.uri = value;
         return Status::Ok();
       }},
      {"store_password_file", Text(&o.postgres.password_file)},
      {"store_schema",
       [&o](const std::string& key, const std::string& value) {
         const bool valid = !value.empty() && value.size() <= 63 && !(value[0] >= '0' && value[0] <= '9') &&
                            value.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
         if (!valid) return Bad(key, "use lower-case letters, digits and '_', not starting with a digit");
         o.postgres.schema = value;
         return Status::Ok();
       }},
      {"store_timeout_ms", Number(&o.postgres.timeout_ms, 100, 600000)},
      {"events_topic",
       [&o](const std::string& key, const std::string& value) {
         // A topic name that subscribers can match: text as MQTT clients accept it (libmosquitto
         // disconnects on a topic that fails this check), no wildcards, no empty level at its
         // end, and outside the twins' own territory (nothing there reaches subscribers).
         if (value.size() > 1024) return Bad(key, "is longer than 1024 bytes");
         if (mosquitto_validate_utf8(value.data(), static_cast<int>(value.size())) != MOSQ_ERR_SUCCESS) {
           return Bad(key, "is not a topic name: not valid UTF-8, or it holds a control character or a noncharacter");
         }
         if (value.empty() || value.back() == '/' || value.find_first_of("+#") != std::string::npos) {
           return Bad(key, "'" + value + "' is not a topic name (no '+', '#', or trailing '/')");
         }
         if (value.rfind("$SCW/twins", 0) == 0) return Bad(key, "must not be under $SCW/twins");
         o.events_topic = value;
         return Status::Ok();
       }},
      {"wake_address",
       [&o](const std::string&, const std::string& value) {
         WakeTarget target;
         bool off = false;
         Status s = ParseWakeAddress(value, &target, &off);
         if (s.ok()) o.wake_address = value;
         return s;  // its message names plugin_opt_wake_address
       }},
      {"graphite_url", Text(&o.graphite_url)},
      {"graphite_queue", Number(&o.graphite_queue, 1, 100000000)},
      {"twin_identity",
       [&o](const std::string& key, const std::string& value) {
         if (value != "clientid" && value != "username") return Bad(key, "'" + value + "' is not clientid or username");
         o.twin_identity = value == "clientid" ? TwinIdentity::kClientId : TwinIdentity::kUsername;
         return Status::Ok();
       }},
      {"other_access_checks",
       [&o](const std::string& key, const std::string& value) {
         if (value != "auto" && value != "yes" && value != "no")
           return Bad(key, "'" + value + "' is not auto, yes or no");
         o.other_access_checks = value == "auto"  ? OtherAccessChecks::kAuto
                                 : value == "yes" ? OtherAccessChecks::kYes
                                                  : OtherAccessChecks::kNo;
         return Status::Ok();
       }},
      {"max_requests_per_second", Number(&o.max_requests_per_second, 0, 1000000)},
      {"request_burst", Number(&o.request_burst, 1, 1000000)},
      {"max_series_per_twin", Number(&o.max_series_per_twin, 1, 100000000)},
  };
  for (const auto& [key, value] : pairs) {
    auto parser = parsers.find(key);
    if (parser == parsers.end()) return Bad(key, "unknown option");
    Status s = parser->second(key, value);
    if (!s.ok()) return s;
  }
  o.store.cache_bytes = cache_mb << 20;
  o.store.min_free_bytes = min_free_mb << 20;
  o.store.changelog_bytes = changelog_mb << 20;
  return o;
}

}  // namespace twins
