// Failed authentications, per source address: counted, logged (rate-limited) and, for an
// address that keeps failing, answered with a refusal for a while, so tokens cannot be
// guessed at the server's speed.
//
// Policy: an address may fail `free_failures` times; every further failure refuses it for a
// period that doubles (1 s, 2 s, 4 s … up to 60 s). While refused, its requests are not
// checked at all (a check would tell a guesser whether the guess was right). An address is
// forgotten 10 minutes after its last failure. IPv6 addresses count per /64, the block one
// host usually holds. The table holds at most `max_peers` addresses (least recently failing
// forgotten first), about 100 bytes each. A client that never fails is never looked at beyond
// one atomic read, so successful clients are not slowed by others' failures; clients sharing
// a source address with a guesser (one NAT, one reverse proxy) are refused with it.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "common/lru_map.hpp"

namespace twins {

class AuthGuard {
 public:
  using Clock = std::chrono::steady_clock;

  // `free_failures` 0: failures are counted and logged, never refused.
  AuthGuard(uint32_t free_failures, size_t max_peers, LogFn log);

  // 0 when `peer` may present a token now; otherwise how long it stays refused, in ms.
  uint64_t RefusedFor(std::string_view peer, Clock::time_point now = Clock::now());
  // Records a failed token from `peer`; `why` is a short reason for the log.
  void Failed(std::string_view peer, std::string_view why, Clock::time_point now = Clock::now());

  uint64_t failures() const { return total_.load(std::memory_order_relaxed); }
  static constexpr std::chrono::milliseconds kFirstRefusal{1000};
  static constexpr std::chrono::milliseconds kLongestRefusal{60000};
  static constexpr std::chrono::minutes kForgetAfter{10};

 private:
  struct Peer {
    uint64_t failures = 0;
    Clock::time_point last_failure;
    Clock::time_point refused_until;
  };
  // The table key: the address, an IPv6 one cut to its /64.
  static std::string Key(std::string_view peer);
  // At most one line a second, bursts of 10; what is left out is counted in the next line.
  void Log(const std::string& line, Clock::time_point now);

  const uint32_t free_failures_;
  const LogFn log_;
  std::atomic<uint64_t> total_{0};
  std::atomic<size_t> tracked_{0};  // peers in the table, read without the lock

  std::mutex mutex_;
  LruMap<Peer> peers_;
  double log_tokens_ = 10;
  Clock::time_point log_refill_;
  uint64_t log_suppressed_ = 0;
};

}  // namespace twins
