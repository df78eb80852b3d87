#include "engine/speech_scheduler.h"

#include "engine/metrics.h"

#include <algorithm>
#include <exception>

namespace fathom::engine {

bool SpeechRequest::done() const {
  std::lock_guard lock(mu_);
  return finished_;
}

void SpeechRequest::wait(std::size_t known_text_bytes, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return finished_ || job_->text_so_far().size() > known_text_bytes; });
}

Result<models::Transcription> SpeechRequest::result() const {
  std::lock_guard lock(mu_);
  if (error_) return *error_;
  if (!finished_) return make_error(ErrorCode::kInternal, "the transcription is not finished");
  return job_->result();
}

void SpeechRequest::notify() {
  {
    std::lock_guard lock(mu_);
    finished_ = job_->done();
  }
  cv_.notify_all();
}

void SpeechRequest::fail(const Error& error) {
  {
    std::lock_guard lock(mu_);
    if (finished_) return;
    error_ = error;
    finished_ = true;
  }
  cv_.notify_all();
}

SpeechScheduler::SpeechScheduler(std::string name, models::SpeechToText& stt, SpeechSchedulerOptions options)
    : name_(std::move(name)), stt_(stt), options_(options) {}

Result<std::shared_ptr<SpeechRequest>> SpeechScheduler::start(std::vector<float> samples,
                                                              const models::SpeechOptions& options) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return close_error_;
    if (in_flight_ >= options_.max_jobs)
      return make_error(ErrorCode::kOverloaded, "model '" + name_ + "' is transcribing " + std::to_string(in_flight_) +
                                                    " requests, its limit; retry later");
  }
  FATHOM_ASSIGN_OR_RETURN(auto job, stt_.start(std::move(samples), options));
  auto request = std::make_shared<SpeechRequest>(std::move(job));
  {
    std::lock_guard lock(mu_);
    if (closed_) return close_error_;
    if (in_flight_ >= options_.max_jobs)
      return make_error(ErrorCode::kOverloaded, "model '" + name_ + "' is transcribing " + std::to_string(in_flight_) +
                                                    " requests, its limit; retry later");
    pending_.push_back(request);
    ++in_flight_;
  }
  wake();
  return request;
}

bool SpeechScheduler::has_work() const {
  std::lock_guard lock(mu_);
  return in_flight_ > 0;
}

std::size_t SpeechScheduler::step() {
  const auto started = std::chrono::steady_clock::now();
  Metrics::Step record;
  {
    std::lock_guard lock(mu_);
    for (auto& r : pending_) {
      record.queue_waits.push_back(std::chrono::duration<double>(started - r->queued_at_).count());
      running_.push_back(std::move(r));
    }
    pending_.clear();
  }
  if (running_.empty()) return 0;
  std::vector<models::SpeechJob*> jobs;
  jobs.reserve(running_.size());
  std::optional<Error> failure;
  try {
    for (auto& r : running_) {
      if (r->cancelled_.load()) stt_.cancel(r->job_.get());
      if (!r->job_->done()) jobs.push_back(r->job_.get());
    }
    if (!jobs.empty()) stt_.step(jobs);
  } catch (const Exception& e) {
    failure = make_error(e.code(), std::string("transcription step failed: ") + e.what());
  } catch (const std::exception& e) {
    failure = make_error(ErrorCode::kInternal, std::string("transcription step failed: ") + e.what());
  } catch (...) {
    failure = make_error(ErrorCode::kInternal, "transcription step failed");
  }
  const std::size_t cost = running_.size();
  // Book-keeping first, then wake the waiters: a woken waiter sees the stats of the step that finished it.
  std::vector<std::shared_ptr<SpeechRequest>> still_running, touched;
  std::size_t finished = 0;
  for (auto& r : running_) {
    if (failure || r->job_->done()) ++finished;
    else still_running.push_back(r);
    if (!failure && r->job_->done()) {
      if (auto result = r->job_->result(); result.ok()) Metrics::global().add_audio_seconds(name_, result->duration);
    }
  }
  record.sequences = jobs.size();
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  Metrics::global().record_step(name_, record);
  touched.swap(running_);
  running_ = std::move(still_running);
  {
    std::lock_guard lock(mu_);
    in_flight_ -= finished;
    ++stats_.steps;
    stats_.completed += finished;
    stats_.largest_batch = std::max(stats_.largest_batch, cost);
    stats_.running = running_.size();
  }
  for (auto& r : touched) {
    if (failure) r->fail(*failure);  // the job's state is unknown after an exception: end all of them
    else r->notify();
  }
  return cost;
}

void SpeechScheduler::close(const Error& error) {
  std::vector<std::shared_ptr<SpeechRequest>> pending;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    close_error_ = error;
    pending.swap(pending_);
    in_flight_ -= pending.size();
  }
  for (auto& r : pending) r->fail(error);
}

SpeechStats SpeechScheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace fathom::engine
