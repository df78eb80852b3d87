#pragma once
// Whether the client of a request being handled is still connected, for handlers that wait on queued work.
//
// cpp-httplib 0.11.4 gives a handler no access to its socket. ClientLiveness finds the connection's socket
// among the process's open file descriptors by its address pair (the Request's local and remote address
// and port; unique among TCP connections while the handler runs, because httplib closes the socket only
// after the handler returns), once, on the first call of gone(). Then each gone() is one non-blocking
// recv(MSG_PEEK): end-of-stream or a reset/error means the client closed or lost the connection. Bytes
// waiting (a pipelined next request) do not count as gone. A client that only half-closes (shutdown of its
// sending side, then waits for the answer) looks gone; HTTP clients do not do that.
//
// Cost: the first gone() lists /proc/self/fd and calls getsockname/getpeername on each socket (about 1 ms
// with 1,000 open connections); call it only for requests that already waited a while.
// Thread-safety: one object per request, used by the handler's thread only.
#include <algorithm>
#include <chrono>
#include <future>
#include <string>

namespace httplib {
struct Request;
}

namespace fathom::server {

class ClientLiveness {
 public:
  explicit ClientLiveness(const httplib::Request& req);
  // True once the client closed or reset the connection; false while it is connected or when the socket
  // cannot be found (then nothing is ever cancelled early).
  bool gone();
  // The socket found (-1: none), after the first gone(); for tests.
  int fd() const { return fd_; }

 private:
  std::string local_addr_, remote_addr_;
  int local_port_ = -1, remote_port_ = -1;
  bool resolved_ = false;
  int fd_ = -1;
};

enum class WaitOutcome { kReady, kTimeout, kClientGone };

// Waits for `f` until `deadline`; after `grace`, checks every `poll` whether the client went away.
template <class Future>
WaitOutcome wait_for_result(Future& f, std::chrono::steady_clock::time_point deadline, ClientLiveness& client,
                            std::chrono::milliseconds grace = std::chrono::milliseconds(200),
                            std::chrono::milliseconds poll = std::chrono::milliseconds(100)) {
  auto next = std::min(deadline, std::chrono::steady_clock::now() + grace);
  for (;;) {
    if (f.wait_until(next) == std::future_status::ready) return WaitOutcome::kReady;
    if (std::chrono::steady_clock::now() >= deadline) return WaitOutcome::kTimeout;
    if (client.gone()) return WaitOutcome::kClientGone;
    next = std::min(deadline, std::chrono::steady_clock::now() + poll);
  }
}

}  // namespace fathom::server
