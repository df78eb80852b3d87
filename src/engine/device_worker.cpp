#include "engine/device_worker.h"

#include <algorithm>
#include <chrono>
#include <limits>

#include "runtime/device_fault.h"

namespace fathom::engine {

double DeviceWorker::steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

DeviceWorker::DeviceWorker(std::string device_name, StepClock clock)
    : device_name_(std::move(device_name)), clock_(std::move(clock)) {
  thread_ = std::thread([this] { run(); });
}

DeviceWorker::~DeviceWorker() { stop(); }

void DeviceWorker::attach(std::shared_ptr<Scheduler> scheduler) {
  scheduler->set_wake([this] { notify(); });
  std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>> to_close;
  {
    std::lock_guard lock(mu_);
    entries_.push_back(Entry{std::move(scheduler), virtual_clock_, false, 0});
    if (!device_fault_) device_fault_ = device_fault(device_name_);
    if (device_fault_) {
      fault_locked(entries_.back(), *device_fault_, to_close);
    }
  }
  close_faulted(to_close);
  cv_.notify_all();
}

void DeviceWorker::fault_locked(Entry& e, const std::string& error,
                                std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>>& out) {
  if (e.faulted) return;
  e.faulted = true;
  faults_.push_back(Fault{e.scheduler->name(), device_name_, error});
  out.emplace_back(e.scheduler, error);
}

void DeviceWorker::close_faulted(const std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>>& faulted) {
  for (const auto& [s, error] : faulted) {
    s->close(make_error(ErrorCode::kUnavailable, "model '" + s->name() + "' cannot serve: its device " + device_name_ +
                                                     " failed (" + error + "); it stays unavailable until fathom restarts"));
  }
}

void DeviceWorker::inject_fault(const Scheduler* scheduler, const std::string& error) {
  std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>> to_close;
  {
    std::lock_guard lock(mu_);
    if (!scheduler && !device_fault_) device_fault_ = error;
    for (auto& e : entries_) {
      if (scheduler && e.scheduler.get() != scheduler) continue;
      fault_locked(e, error, to_close);
    }
  }
  close_faulted(to_close);
  cv_.notify_all();
}

std::vector<DeviceWorker::Fault> DeviceWorker::faults() const {
  std::lock_guard lock(mu_);
  return faults_;
}

void DeviceWorker::detach(const Scheduler* scheduler) {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return running_ != scheduler; });
  std::erase_if(entries_, [&](const Entry& e) { return e.scheduler.get() == scheduler; });
}

void DeviceWorker::notify() {
  { std::lock_guard lock(mu_); }  // orders the caller's queueing before the worker's predicate check
  cv_.notify_all();
}

void DeviceWorker::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::size_t DeviceWorker::steps(const Scheduler* scheduler) const {
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.scheduler.get() == scheduler) return e.steps;
  }
  return 0;
}

void DeviceWorker::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    Entry* pick = nullptr;
    cv_.wait(lock, [&] {
      pick = nullptr;
      double best = std::numeric_limits<double>::infinity();
      for (auto& e : entries_) {
        if (!e.scheduler->has_work()) {
          e.active = false;
          continue;
        }
        if (!e.active) {  // rejoining: no credit for the time it was idle
          e.vtime = std::max(e.vtime, virtual_clock_);
          e.active = true;
        }
        if (e.vtime < best) {
          best = e.vtime;
          pick = &e;
        }
      }
      return pick != nullptr || stopping_;
    });
    if (pick == nullptr) return;  // stopping and drained

    std::shared_ptr<Scheduler> scheduler = pick->scheduler;
    virtual_clock_ = std::max(virtual_clock_, pick->vtime);
    running_ = scheduler.get();
    lock.unlock();
    const double started = clock_();
    try {
      scheduler->step();  // contractually never throws; guard the worker anyway
    } catch (...) {
    }
    const double seconds = clock_() - started;
    // A sticky fault reported by the backend during the step (runtime/device_fault.h) ends the device.
    std::vector<std::pair<std::shared_ptr<Scheduler>, std::string>> to_close;
    if (auto fault = device_fault(device_name_)) {
      lock.lock();
      if (!device_fault_) device_fault_ = *fault;
      for (auto& e : entries_)
        fault_locked(e, *fault, to_close);
      lock.unlock();
      close_faulted(to_close);
    }
    lock.lock();
    running_ = nullptr;
    for (auto& e : entries_) {
      if (e.scheduler == scheduler) {
        e.vtime += std::max(seconds, 1e-9) / std::max(1e-6, scheduler->priority());
        e.steps++;
      }
    }
    idle_cv_.notify_all();
  }
}

}  // namespace fathom::engine
