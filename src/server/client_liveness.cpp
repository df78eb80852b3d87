#include "server/client_liveness.h"

#include <dirent.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <httplib.h>

namespace fathom::server {
namespace {

// Numeric host and port of `sa`, as httplib writes Request::remote_addr / local_addr.
bool numeric(const sockaddr_storage& sa, socklen_t len, std::string& host, int& port) {
  char h[NI_MAXHOST];
  char p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&sa), len, h, sizeof(h), p, sizeof(p),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return false;
  host = h;
  port = std::atoi(p);
  return true;
}

}  // namespace

ClientLiveness::ClientLiveness(const httplib::Request& req)
    : local_addr_(req.local_addr), remote_addr_(req.remote_addr), local_port_(req.local_port),
      remote_port_(req.remote_port) {}

bool ClientLiveness::gone() {
  if (!resolved_) {
    resolved_ = true;
    if (remote_port_ <= 0 || local_port_ <= 0) return false;
    DIR* dir = opendir("/proc/self/fd");
    if (!dir) return false;
    while (dirent* e = readdir(dir)) {
      char* end = nullptr;
      const long fd = std::strtol(e->d_name, &end, 10);
      if (end == e->d_name || *end != '\0' || fd == dirfd(dir)) continue;
      sockaddr_storage peer{}, self{};
      socklen_t peer_len = sizeof(peer), self_len = sizeof(self);
      if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
      if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&self), &self_len) != 0) continue;
      std::string host;
      int port = -1;
      if (!numeric(peer, peer_len, host, port) || port != remote_port_ || host != remote_addr_) continue;
      if (!numeric(self, self_len, host, port) || port != local_port_ || host != local_addr_) continue;
      fd_ = static_cast<int>(fd);
      break;
    }
    closedir(dir);
  }
  if (fd_ < 0) return false;
  char byte;
  const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return false;  // data waiting: still connected
  if (n == 0) return true;  // orderly shutdown by the client
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;  // reset or another socket error
}

}  // namespace fathom::server
