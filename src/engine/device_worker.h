#pragma once
// One thread per device: the only thread that runs models placed on that device.
//
// The worker interleaves every attached scheduler, weighted-fair by Scheduler::priority(): each scheduler
// carries a virtual time that advances by (the step's duration) / priority after each of its steps, and the
// worker always steps the scheduler with work whose virtual time is smallest. Steps are synchronous (a step
// returns its results to the host), so a step's wall time is the device time it held; measuring it keeps the
// share fair across kinds of work whose own cost units do not compare (an encoder batch's tokens against a
// speech decoder step's running jobs). A scheduler that was idle
// rejoins at the current virtual time (it cannot bank credit while idle), so one busy model cannot starve
// another and a model with priority 2 gets about twice the device time of one with priority 1.
//
// Device faults (runtime/device_fault.h): after every step the worker checks whether a sticky fault was
// reported for its device. On one, every attached scheduler is closed with kUnavailable (HTTP 503) naming
// its model, the device and the error, so queued and new requests fail at once instead of hanging; work
// already running finishes or fails with the device's own error. Schedulers attached later are closed at
// once. faults() lists the faulted models (for /health, /ready and /metrics).
//
// Thread-safety: every public method may be called from any thread.
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/scheduler.h"

namespace fathom::engine {

class DeviceWorker {
 public:
  // Seconds on a monotonic clock; the worker times each step with it. Tests pass a fake clock that their
  // schedulers advance, so shares are checked without depending on a loaded machine's scheduling.
  using StepClock = std::function<double()>;
  static double steady_seconds();

  explicit DeviceWorker(std::string device_name, StepClock clock = steady_seconds);
  ~DeviceWorker();  // stop(): drains queued work, then joins
  DeviceWorker(const DeviceWorker&) = delete;
  DeviceWorker& operator=(const DeviceWorker&) = delete;

  const std::string& device_name() const { return device_name_; }

  // Adds a scheduler; the worker starts stepping it as soon as it has work.
  void attach(std::shared_ptr<Scheduler> scheduler);
  // Removes a scheduler; returns once the worker is no longer inside one of its steps. Work still queued in
  // it is not run (close() it first to fail that work).
  void detach(const Scheduler* scheduler);
  // Wakes the worker (called by schedulers after queueing).
  void notify();
  // Runs until every attached scheduler is empty, then stops the thread. Idempotent.
  void stop();

  // Steps run so far for `scheduler` (0 if unknown); for tests and stats.
  std::size_t steps(const Scheduler* scheduler) const;

  struct Fault {
    std::string model;   // the scheduler's name
    std::string device;  // device_name()
    std::string error;
  };
  // Fault-injection hook (tests): faults `scheduler` (its model's execution context) as a sticky device
  // error would, or every scheduler of the device when `scheduler` is null. A scheduler faults once.
  void inject_fault(const Scheduler* scheduler, const std::string& error);
  // Every faulted model of this device, in fault order.
  std::vector<Fault> faults() const;

 private:
  struct Entry {
    std::shared_ptr<Scheduler> scheduler;
    double vtime = 0.0;
    bool active = false;
    std::size_t steps = 0;
    bool faulted = false;
  };
  void run();
  // Records `e`'s fault unless it already faulted and adds its scheduler to `out`; call with mu_ held.
  void fault_locked(Entry& e, const std::string& error,
                    std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>>& out);
  // Closes each (scheduler, error) with the 503 error; call without mu_.
  void close_faulted(const std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>>& faulted);

  const std::string device_name_;
  const StepClock clock_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // work arrived or stop requested
  std::condition_variable idle_cv_;  // a step finished
  std::vector<Entry> entries_;
  const Scheduler* running_ = nullptr;
  double virtual_clock_ = 0.0;
  bool stopping_ = false;
  std::optional<std::string> device_fault_;  // set once the whole device faulted
  std::vector<Fault> faults_;
  std::thread thread_;
};

}  // namespace fathom::engine
