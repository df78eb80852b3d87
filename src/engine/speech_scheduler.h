#pragma once
// Per-model speech-to-text queue: continuous batching of SpeechJobs.
//
// start() validates a request and creates its job (SpeechToText::start: cheap, thread-safe) and queues it.
// Every step() on the device worker advances ALL running jobs by one SpeechToText::step (encoder windows
// batched, one batched decoder call), so requests join and leave the running batch at any decoder step.
// Finished jobs leave the batch; their waiters are woken. A cancelled request (SpeechRequest::cancel, e.g.
// a streaming client that went away) is ended at the next step and its device state freed.
//
// Thread-safety: start(), has_work(), close(), stats() and every SpeechRequest method may be called from
// any thread; step() from the device worker only.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/scheduler.h"
#include "models/model.h"

namespace fathom::engine {

// One queued or running request: wait for progress, read partial text, take the result.
class SpeechRequest {
 public:
  explicit SpeechRequest(std::unique_ptr<models::SpeechJob> job) : job_(std::move(job)) {}
  // True once the job finished (or failed).
  bool done() const;
  // Blocks until done() or until the text grew past `known_text_bytes`, at most `timeout`.
  void wait(std::size_t known_text_bytes, std::chrono::milliseconds timeout) const;
  // Text decoded so far (grows monotonically, complete UTF-8).
  std::string text_so_far() const { return job_->text_so_far(); }
  // The outcome once done(); an error while not done.
  Result<models::Transcription> result() const;
  // Asks the scheduler to end the job at its next step (the client went away); frees its device state.
  void cancel() { cancelled_.store(true); }

 private:
  friend class SpeechScheduler;
  void notify();                // after a step touched this request
  void fail(const Error& error);  // ends it with `error` (the job is abandoned)

  std::unique_ptr<models::SpeechJob> job_;
  std::chrono::steady_clock::time_point queued_at_ = std::chrono::steady_clock::now();
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::optional<Error> error_;  // set when the scheduler failed it
  bool finished_ = false;
};

struct SpeechSchedulerOptions {
  std::size_t max_jobs = 256;  // queued + running requests at once; beyond: kOverloaded (HTTP 429)
  double priority = 1.0;       // device share relative to other models on the same device
};

struct SpeechStats {
  std::size_t running = 0;    // jobs in the batch now
  std::size_t steps = 0;      // SpeechToText::step calls
  std::size_t completed = 0;  // jobs finished (ok or failed)
  std::size_t largest_batch = 0;
};

class SpeechScheduler final : public Scheduler {
 public:
  // `stt` must outlive the scheduler.
  SpeechScheduler(std::string name, models::SpeechToText& stt, SpeechSchedulerOptions options);

  // Creates the job (request errors come back here: kInvalidArgument, kTooLarge, kUnsupported) and queues
  // it; kOverloaded when max_jobs are in flight, kUnavailable after close().
  // `samples`: 16 kHz mono audio (the model computes its own features).
  Result<std::shared_ptr<SpeechRequest>> start(std::vector<float> samples, const models::SpeechOptions& options);

  const std::string& name() const override { return name_; }
  double priority() const override { return options_.priority; }
  bool has_work() const override;
  std::size_t step() override;
  void close(const Error& error) override;

  SpeechStats stats() const;
  models::SpeechToText& speech() { return stt_; }

 private:
  const std::string name_;
  models::SpeechToText& stt_;
  const SpeechSchedulerOptions options_;

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<SpeechRequest>> pending_;  // submitted, not yet in the batch
  std::vector<std::shared_ptr<SpeechRequest>> running_;  // owned by the worker thread
  std::size_t in_flight_ = 0;
  bool closed_ = false;
  Error close_error_;
  SpeechStats stats_;
};

}  // namespace fathom::engine
