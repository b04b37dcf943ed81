// Carbon's plaintext protocol: "name;tags value time\n" lines on a TCP connection. Sockets
// are non-blocking and every wait is a poll() bounded by the caller's deadline, so a slow
// or silent carbon holds the sender thread no longer than that.
#include <netdb.h>
#include <linux/sockios.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include "tsdb/transport.hpp"

namespace twins {
namespace {

int MillisUntil(Transport::Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 60000));
}

// Waits for `events` on `fd`; false on timeout.
bool Wait(int fd, short events, Transport::Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, MillisUntil(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return true;  // let the following call report the error
  }
}

class CarbonTcpTransport final : public Transport {
 public:
  explicit CarbonTcpTransport(GraphiteTarget target) : target_(std::move(target)) {}
  ~CarbonTcpTransport() override { Close(); }

  Status Send(const std::vector<EncodedPoint>& batch, Deadline deadline) override {
    // Carbon never writes to us: a readable socket means it closed the connection, and
    // writing there would lose the batch without an error. A reset, or a close before it
    // acknowledged what we wrote, lost data: that is a failure, not a reconnection.
    if (fd_ >= 0 && PeerClosed()) {
      int err = 0;
      socklen_t len = sizeof err;
      int unacknowledged = 0;
      if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0 && ioctl(fd_, SIOCOUTQ, &unacknowledged) == 0 && unacknowledged > 0) err = ECONNRESET;
      if (err != 0) return Fail("connection to " + target_.display + " lost: " + std::strerror(err));
      Close();
    }
    if (fd_ < 0) {
      Status s = Connect(deadline);
      if (!s.ok()) return s;
    }
    std::string payload;
    for (const EncodedPoint& point : batch) payload += PlaintextLine(point);
    last_payload_ = payload.size();
    size_t done = 0;
    while (done < payload.size()) {
      const ssize_t n = ::send(fd_, payload.data() + done, payload.size() - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (!Wait(fd_, POLLOUT, deadline)) return Fail("timed out writing to " + target_.display);
      } else {
        return Fail("writing to " + target_.display + ": " + std::strerror(errno));
      }
    }
    return Status::Ok();
  }

  // Everything written before the last batch is acknowledged: a peer that reads keeps up
  // with that while points keep coming, one that never reads leaves its window full.
  bool Confirmed() override {
    if (fd_ < 0 || PeerClosed()) return false;
    int unacknowledged = 0;
    return ioctl(fd_, SIOCOUTQ, &unacknowledged) == 0 && static_cast<size_t>(unacknowledged) <= last_payload_;
  }
  Deadline ConnectedSince() const override { return connected_since_; }

 private:
  bool PeerClosed() const {
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    return poll(&p, 1, 0) != 0;
  }

  Status Connect(Deadline deadline) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(target_.host.c_str(), std::to_string(target_.port).c_str(), &hints, &found);
    if (rc != 0) return Status::Internal("resolving " + target_.host + ": " + gai_strerror(rc));
    std::string error = "no address";
    for (addrinfo* a = found; a != nullptr && fd_ < 0; a = a->ai_next) {
      fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd_ < 0) {
        error = std::strerror(errno);
        continue;
      }
      int err = ::connect(fd_, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
      if (err == EINPROGRESS) {
        socklen_t len = sizeof err;
        if (!Wait(fd_, POLLOUT, deadline)) {
          err = ETIMEDOUT;
        } else if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = errno;
        }
      }
      if (err != 0) {
        error = std::strerror(err);
        Close();
      }
    }
    freeaddrinfo(found);
    if (fd_ < 0) return Status::Internal("connecting to " + target_.display + ": " + error);
    connected_since_ = std::chrono::steady_clock::now();
    return Status::Ok();
  }

  Status Fail(const std::string& message) {
    Close();  // a partly written line must not prefix the next one
    return Status::Internal(message);
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  GraphiteTarget target_;
  int fd_ = -1;
  Deadline connected_since_;
  size_t last_payload_ = 0;
};

}  // namespace

std::unique_ptr<Transport> MakeCarbonTcpTransport(const GraphiteTarget& target) {
  return std::make_unique<CarbonTcpTransport>(target);
}

}  // namespace twins
