#pragma once
// The unit a device worker interleaves: one scheduler per (model, task) placed on a device.
//
// A scheduler owns its model's request queue and knows how to run one batch. The device worker calls
// has_work()/step() from its one thread; submit paths on other threads call wake() after queueing so the
// worker notices. Implementations must be thread-safe for has_work()/fail_pending() against submitters.
#include <cstddef>
#include <functional>
#include <string>

#include "base/error.h"

namespace fathom::engine {

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // The model's name (for logs and stats).
  virtual const std::string& name() const = 0;
  // Relative share of its device time when several schedulers have work (> 0; 2.0 gets twice the time of 1.0).
  virtual double priority() const = 0;
  // True when at least one request is waiting.
  virtual bool has_work() const = 0;
  // Forms one batch, runs it on the calling (device worker) thread and fulfils its requests. Returns the
  // batch's size in the scheduler's own unit (tokens, running jobs; >= 1 when something ran, 0 when the queue
  // was empty); the device worker shares time by measuring the step, not by this figure. Never throws: failures
  // are delivered to the affected requests only.
  virtual std::size_t step() = 0;
  // Fails every waiting request with `error` and refuses new ones (unload, shutdown without drain).
  virtual void close(const Error& error) = 0;

  // Installed by the device worker on attach: submitters call it after queueing.
  void set_wake(std::function<void()> wake) { wake_ = std::move(wake); }

 protected:
  void wake() const {
    if (wake_) wake_();
  }

 private:
  std::function<void()> wake_;
};

}  // namespace fathom::engine
