#include "backends/cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace fathom::cpu {
namespace {

class Pool {
 public:
  Pool() {
    int n = static_cast<int>(std::thread::hardware_concurrency());
    if (const char* env = std::getenv("FATHOM_CPU_THREADS")) n = std::atoi(env);
    threads_ = std::max(1, n);
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this, i] { run(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return threads_; }

  void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
    if (n <= 0) return;
    grain = std::max<int64_t>(1, grain);
    int64_t chunks = std::min<int64_t>(threads_, (n + grain - 1) / grain);
    bool expected = false;
    if (chunks <= 1 || !busy_.compare_exchange_strong(expected, true)) {
      fn(0, n, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      n_ = n;
      chunks_ = static_cast<int>(chunks);
      pending_ = chunks_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    run_chunk(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
    busy_.store(false);
  }

 private:
  void run_chunk(int c) {
    int64_t begin = n_ * c / chunks_;
    int64_t end = n_ * (c + 1) / chunks_;
    if (begin < end) (*fn_)(begin, end, c);
  }
  void run(int index) {
    uint64_t seen = 0;
    for (;;) {
      std::unique_lock<std::mutex> lock(mutex_);
      cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      if (index >= chunks_) continue;
      lock.unlock();
      run_chunk(index);
      lock.lock();
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::atomic<bool> busy_{false};
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t, int64_t, int)>* fn_ = nullptr;
  int64_t n_ = 0;
  int chunks_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() { return pool().threads(); }

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn) {
  pool().parallel_for(n, grain, fn);
}

}  // namespace fathom::cpu
