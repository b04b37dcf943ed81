#include "rest/auth_guard.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace twins {
namespace {

std::string Seconds(std::chrono::milliseconds ms) { return std::to_string((ms.count() + 999) / 1000) + " s"; }

}  // namespace

AuthGuard::AuthGuard(uint32_t free_failures, size_t max_peers, LogFn log)
    : free_failures_(free_failures), log_(std::move(log)), peers_(std::max<size_t>(max_peers, 1)) {}

std::string AuthGuard::Key(std::string_view peer) {
  if (peer.find(':') == std::string_view::npos || peer.size() >= INET6_ADDRSTRLEN) return std::string(peer);
  char text[INET6_ADDRSTRLEN] = {};
  std::memcpy(text, peer.data(), peer.size());
  unsigned char bytes[16];
  if (inet_pton(AF_INET6, text, bytes) != 1) return std::string(peer);
  static const unsigned char kMappedV4[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(bytes, kMappedV4, 12) == 0) {
    char v4[INET_ADDRSTRLEN];
    return inet_ntop(AF_INET, bytes + 12, v4, sizeof v4) ? std::string(v4) : std::string(peer);
  }
  std::memset(bytes + 8, 0, 8);
  char prefix[INET6_ADDRSTRLEN];
  if (inet_ntop(AF_INET6, bytes, prefix, sizeof prefix) == nullptr) return std::string(peer);
  return std::string(prefix) + "/64";
}

uint64_t AuthGuard::RefusedFor(std::string_view peer, Clock::time_point now) {
  if (free_failures_ == 0 || tracked_.load(std::memory_order_relaxed) == 0) return 0;
  const std::string key = Key(peer);
  std::lock_guard<std::mutex> lock(mutex_);
  Peer* found = peers_.Find(key);
  if (found == nullptr || found->refused_until <= now) return 0;
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(found->refused_until - now).count() + 1);
}

void AuthGuard::Failed(std::string_view peer, std::string_view why, Clock::time_point now) {
  const uint64_t total = total_.fetch_add(1, std::memory_order_relaxed) + 1;
  const std::string key = Key(peer);
  std::lock_guard<std::mutex> lock(mutex_);
  Peer* entry = peers_.Find(key);
  if (entry == nullptr || now - entry->last_failure > kForgetAfter) {
    entry = &peers_.Insert(key, Peer{}, 1);
    tracked_.store(peers_.size(), std::memory_order_relaxed);
  }
  entry->failures += 1;
  entry->last_failure = now;
  std::string line = "REST: authentication failed from " + key + " (" + std::string(why) +
                     "): " + std::to_string(entry->failures) + (entry->failures == 1 ? " failure" : " failures") +
                     " from it, " + std::to_string(total) + " in all";
  if (free_failures_ != 0 && entry->failures > free_failures_) {
    const uint64_t doublings = std::min<uint64_t>(entry->failures - free_failures_ - 1, 16);
    const auto refusal = std::min<std::chrono::milliseconds>(kFirstRefusal * (uint64_t{1} << doublings),
                                                             kLongestRefusal);
    entry->refused_until = now + refusal;
    Log(line + "; its requests are refused for " + Seconds(refusal), now);
  } else if (entry->failures == 1) {
    Log(line, now);
  } else {
    ++log_suppressed_;  // counted in the next line; the first and every refusal are logged
  }
}

void AuthGuard::Log(const std::string& line, Clock::time_point now) {
  if (!log_) return;
  const double elapsed = std::chrono::duration<double>(now - log_refill_).count();
  log_tokens_ = std::min(10.0, log_tokens_ + std::max(0.0, elapsed));
  log_refill_ = now;
  if (log_tokens_ < 1) {
    ++log_suppressed_;
    return;
  }
  log_tokens_ -= 1;
  std::string text = line;
  if (log_suppressed_ != 0) {
    text += " (" + std::to_string(log_suppressed_) + " more failures not logged)";
    log_suppressed_ = 0;
  }
  try {
    log_(LogLevel::kWarning, text);
  } catch (...) {
    // A failing logger must not fail the request.
  }
}

}  // namespace twins
