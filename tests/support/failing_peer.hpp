// A peer that fails in one chosen way on a loopback port, for tests of clients that must
// notice (the Graphite sender): refused, reset, timing out, or never reading.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

namespace twins::test {

// What answers on a loopback port while a server (carbon) is down, one failure mode each.
class FailingPeer {
 public:
  enum class Mode {
    kRefused,     // nothing listens
    kReset,       // connections accepted, then reset
    kTimeout,     // the backlog is full: connecting times out
    kNeverReads,  // connections accepted, never read
  };

  FailingPeer(Mode mode, int port) : mode_(mode) {
    if (mode == Mode::kRefused) return;  // nothing listens
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bound_ = bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
    if (mode == Mode::kTimeout) {
      // A backlog of 0 that is full: the kernel drops further SYNs, so connecting times out.
      bound_ = bound_ && listen(listener_, 0) == 0;
      for (int i = 0; i < 2; ++i) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        static_cast<void>(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address));
        held_.push_back(fd);
      }
      return;
    }
    bound_ = bound_ && listen(listener_, 16) == 0;
    thread_ = std::thread([this] {
      while (!stop_) {
        pollfd p{listener_, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(listener_, nullptr, nullptr);
        if (fd < 0) continue;
        if (mode_ == Mode::kReset) {
          linger reset{1, 0};
          setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
          close(fd);
        } else {
          held_.push_back(fd);  // accepted, never read
        }
      }
    });
  }
  ~FailingPeer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int fd : held_) close(fd);
    if (listener_ >= 0) close(listener_);
  }
  bool bound() const { return mode_ == Mode::kRefused || bound_; }

 private:
  Mode mode_;
  int listener_ = -1;
  bool bound_ = false;
  std::atomic<bool> stop_{false};
  std::vector<int> held_;
  std::thread thread_;
};

}  // namespace twins::test
