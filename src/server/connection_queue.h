#pragma once
// The HTTP server's task queue: one thread per open connection, up to a limit.
//
// cpp-httplib's default ThreadPool has a fixed number of threads, each held by one connection for its
// whole life (including while its request waits for a batch). That would cap how many requests can wait
// in the engine's queues at the pool size. ConnectionQueue instead starts a thread for every accepted
// connection, up to `max_threads` at once (--max-connections, default 1024); connections beyond that wait
// in a FIFO until a thread frees up. Idle threads linger for a few seconds to serve the next connection,
// then exit. The engine, not the HTTP layer, decides batching, so many waiting requests batch together.
//
// Thread-safety: enqueue() is called by httplib's accept loop; shutdown() once, when listening stops; it
// returns after every queued and running connection has been served.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace fathom::server {

class ConnectionQueue final : public httplib::TaskQueue {
 public:
  explicit ConnectionQueue(std::size_t max_threads, int idle_linger_ms = 2000);
  ~ConnectionQueue() override;

  void enqueue(std::function<void()> fn) override;
  void shutdown() override;

  // Threads alive now (running or lingering); for tests.
  std::size_t threads() const;
  // Most threads alive at once so far.
  std::size_t peak_threads() const;

 private:
  void worker_loop();
  void reap_finished_locked(std::vector<std::thread>& out);

  const std::size_t max_threads_;
  const int idle_linger_ms_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> pending_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> finished_;
  std::size_t idle_ = 0;
  std::size_t peak_ = 0;
  bool shutdown_ = false;
};

// Raises the process's soft limit of open files (RLIMIT_NOFILE) towards what `max_connections` connections
// need (one descriptor each, plus 256 for models, logs and the listening socket), never above the hard
// limit. Returns the soft limit in force afterwards. Distributions often start processes at a soft limit of
// 1,024, which would make accept() fail (EMFILE) long before --max-connections.
std::size_t raise_open_file_limit(std::size_t max_connections);

}  // namespace fathom::server
