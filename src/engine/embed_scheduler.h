#pragma once
// Per-model queue and batcher of sequence models: embedders and classifiers (cross-encoders).
//
// submit() queues token sequences (already tokenized and validated: 1..max_input_tokens ids each); each
// sequence gets its own promise, so a failure is delivered only to the sequences it concerns. step() runs
// on the device worker thread: it takes a FIFO prefix of the queue under the token budget, runs the model
// once (Embedder::embed or Classifier::classify) and fulfils each promise with that sequence's row: the
// pooled, un-normalised vector of an embedder, the raw logits of a classifier. When a
// batch fails (error or exception), each of its sequences is retried alone so only the failing ones fail.
// Promises are fulfilled by the scheduler's own completion thread, in batch order, not by the device
// worker: waking a few hundred waiting HTTP threads costs milliseconds of CPU per batch, which would
// otherwise keep the device idle between steps.
//
// Thread-safety: submit(), has_work(), close() and stats() may be called from any thread; step() from the
// device worker only (the one thread that touches the model).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "engine/batcher.h"
#include "engine/scheduler.h"
#include "models/model.h"

namespace fathom::engine {

using Embedding = std::vector<float>;
using EmbeddingFuture = std::future<Result<Embedding>>;
// Set by a request that gave up (deadline, client gone): its sequences still waiting are dropped.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

struct EmbedSchedulerOptions {
  BatchLimits limits;              // token budget and size cap of one batch
  // Sequences waiting at once; a request that would pass it gets kOverloaded (HTTP 429). An empty queue
  // admits one request of any size, so a request larger than the bound is not refused forever.
  std::size_t max_queued = 1024;
  double priority = 1.0;           // device share relative to other models on the same device
};

struct EmbedStats {
  std::size_t queued = 0;           // sequences waiting now
  std::size_t batches = 0;          // batches run
  std::size_t sequences = 0;        // sequences completed (ok or failed)
  std::size_t failed = 0;           // sequences failed
  std::size_t largest_batch = 0;    // most sequences in one batch
  std::size_t max_batch_tokens = 0; // most tokens in one batch
  std::size_t cancelled = 0;        // sequences dropped by cancel() before they ran
};

class EmbedScheduler final : public Scheduler {
 public:
  // One batch of sequences -> sequences.size() * row width floats, row-major.
  using RunBatch = std::function<Result<std::vector<float>>(const std::vector<std::vector<int32_t>>&)>;
  // `embedder` must outlive the scheduler; rows are embeddings of embedding_dim() floats.
  EmbedScheduler(std::string name, models::Embedder& embedder, EmbedSchedulerOptions options);
  // `classifier` must outlive the scheduler; rows are logits, one per label.
  EmbedScheduler(std::string name, models::Classifier& classifier, EmbedSchedulerOptions options);
  // Any sequence model: `run` is called on the device worker only; each row holds `row_width` floats.
  EmbedScheduler(std::string name, RunBatch run, int row_width, EmbedSchedulerOptions options);
  // Rows whose size depends on the sequence: `row_floats(tokens)` floats for a sequence of `tokens` ids
  // (per-token outputs); `run` returns the rows of a batch one after another.
  using RowFloats = std::function<std::size_t(std::size_t tokens)>;
  EmbedScheduler(std::string name, RunBatch run, RowFloats row_floats, EmbedSchedulerOptions options);
  // `embedder` must outlive the scheduler; rows are its `kind` per-token output (Embedder::embed_tokens).
  EmbedScheduler(std::string name, models::Embedder& embedder, models::TokenOutput kind,
                 EmbedSchedulerOptions options);
  ~EmbedScheduler() override;  // delivers every result already computed, then stops the completion thread
  EmbedScheduler(const EmbedScheduler&) = delete;
  EmbedScheduler& operator=(const EmbedScheduler&) = delete;

  // Queues every sequence or none: fails with kOverloaded when the queue would exceed max_queued, and with
  // kUnavailable after close(). Returns one future per sequence, in order. With `cancel`, cancel() can
  // later drop whichever of these sequences are still waiting.
  Result<std::vector<EmbeddingFuture>> submit(std::vector<std::vector<int32_t>> sequences, CancelFlag cancel = nullptr);
  // Sets `cancel` and drops the sequences submitted with it that are still queued, fulfilling their promises
  // with `error`. Sequences already in a running batch finish normally. Returns how many were dropped.
  std::size_t cancel(const CancelFlag& cancel, const Error& error);

  const std::string& name() const override { return name_; }
  double priority() const override { return options_.priority; }
  bool has_work() const override;
  std::size_t step() override;
  void close(const Error& error) override;

  EmbedStats stats() const;
  // Floats per row of a fixed-width scheduler (the embedding width, or the label count); 0 when rows vary.
  int embedding_dim() const { return dim_; }

 private:
  struct Item {
    std::vector<int32_t> tokens;
    std::promise<Result<Embedding>> promise;
    CancelFlag cancel;
    std::chrono::steady_clock::time_point queued_at;
  };
  using Delivery = std::vector<std::pair<std::promise<Result<Embedding>>, Result<Embedding>>>;
  // Runs `items` as one batch; on failure returns the error without touching the promises.
  Result<std::vector<float>> run_batch(std::vector<Item>& items);
  // Hands finished promises and their values to the completion thread.
  void deliver(Delivery delivery);
  void completion_loop();

  const std::string name_;
  const RunBatch run_;
  const RowFloats row_floats_;
  const EmbedSchedulerOptions options_;
  const int dim_;

  mutable std::mutex mu_;
  std::deque<Item> queue_;
  bool closed_ = false;
  Error close_error_;
  EmbedStats stats_;

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  std::deque<Delivery> done_;
  bool stopping_ = false;
  std::thread completer_;  // last member: started after everything it uses
};

}  // namespace fathom::engine
