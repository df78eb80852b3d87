#include "server/connection_queue.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>

namespace fathom::server {

ConnectionQueue::ConnectionQueue(std::size_t max_threads, int idle_linger_ms)
    : max_threads_(max_threads == 0 ? 1 : max_threads), idle_linger_ms_(idle_linger_ms) {}

ConnectionQueue::~ConnectionQueue() { shutdown(); }

void ConnectionQueue::reap_finished_locked(std::vector<std::thread>& out) {
  for (auto id : finished_) {
    auto it = threads_.find(id);
    if (it != threads_.end()) {
      out.push_back(std::move(it->second));
      threads_.erase(it);
    }
  }
  finished_.clear();
}

void ConnectionQueue::enqueue(std::function<void()> fn) {
  std::vector<std::thread> done;
  {
    std::unique_lock lock(mu_);
    reap_finished_locked(done);
    pending_.push_back(std::move(fn));
    const std::size_t live = threads_.size() - finished_.size();
    if (pending_.size() > idle_ && live < max_threads_) {  // every idle thread is already spoken for
      std::thread t([this] { worker_loop(); });
      threads_.emplace(t.get_id(), std::move(t));
      peak_ = std::max(peak_, threads_.size());
    }
  }
  cv_.notify_one();
  for (auto& t : done) t.join();  // these have already left worker_loop
}

void ConnectionQueue::worker_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (pending_.empty()) {
      if (shutdown_) break;
      idle_++;
      bool got = cv_.wait_for(lock, std::chrono::milliseconds(idle_linger_ms_),
                              [&] { return !pending_.empty() || shutdown_; });
      idle_--;
      if (!got) break;  // lingered long enough
      continue;
    }
    auto fn = std::move(pending_.front());
    pending_.pop_front();
    lock.unlock();
    try {
      fn();
    } catch (...) {
      // httplib handles request errors itself; never let one escape a connection thread.
    }
    lock.lock();
  }
  finished_.push_back(std::this_thread::get_id());
  cv_.notify_all();
}

void ConnectionQueue::shutdown() {
  std::vector<std::thread> all;
  {
    std::unique_lock lock(mu_);
    shutdown_ = true;
    cv_.notify_all();
    // Wait for queued connections to be taken and every thread to leave its loop.
    cv_.wait(lock, [&] { return pending_.empty() && finished_.size() == threads_.size(); });
    for (auto& [id, t] : threads_) all.push_back(std::move(t));
    threads_.clear();
    finished_.clear();
  }
  for (auto& t : all) t.join();
}

std::size_t ConnectionQueue::threads() const {
  std::lock_guard lock(mu_);
  return threads_.size() - finished_.size();
}

std::size_t ConnectionQueue::peak_threads() const {
  std::lock_guard lock(mu_);
  return peak_;
}

std::size_t raise_open_file_limit(std::size_t max_connections) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  const rlim_t want = static_cast<rlim_t>(max_connections) + 256;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    rlimit raised = lim;
    raised.rlim_cur = lim.rlim_max == RLIM_INFINITY ? want : std::min(want, lim.rlim_max);
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  return lim.rlim_cur == RLIM_INFINITY ? static_cast<std::size_t>(-1) : static_cast<std::size_t>(lim.rlim_cur);
}

}  // namespace fathom::server
