#include "engine/embed_scheduler.h"

#include <algorithm>
#include <exception>
#include <utility>

#include "engine/metrics.h"

namespace fathom::engine {

EmbedScheduler::EmbedScheduler(std::string name, models::Embedder& embedder, EmbedSchedulerOptions options)
    : EmbedScheduler(
          std::move(name), [&embedder](const std::vector<std::vector<int32_t>>& s) { return embedder.embed(s); },
          embedder.embedding_dim(), options) {}

EmbedScheduler::EmbedScheduler(std::string name, models::Classifier& classifier, EmbedSchedulerOptions options)
    : EmbedScheduler(
          std::move(name),
          [&classifier](const std::vector<std::vector<int32_t>>& s) { return classifier.classify(s); },
          static_cast<int>(classifier.labels().size()), options) {}

EmbedScheduler::EmbedScheduler(std::string name, models::Embedder& embedder, models::TokenOutput kind,
                               EmbedSchedulerOptions options)
    : EmbedScheduler(
          std::move(name),
          [&embedder, kind](const std::vector<std::vector<int32_t>>& s) { return embedder.embed_tokens(s, kind); },
          RowFloats([kind, width = static_cast<std::size_t>(embedder.token_output_width(kind))](std::size_t tokens) {
            return models::token_output_rows(kind, tokens) * width;
          }),
          options) {}

EmbedScheduler::EmbedScheduler(std::string name, RunBatch run, int row_width, EmbedSchedulerOptions options)
    : name_(std::move(name)), run_(std::move(run)),
      row_floats_([w = static_cast<std::size_t>(row_width)](std::size_t) { return w; }), options_(options),
      dim_(row_width) {
  completer_ = std::thread([this] { completion_loop(); });
}

EmbedScheduler::EmbedScheduler(std::string name, RunBatch run, RowFloats row_floats, EmbedSchedulerOptions options)
    : name_(std::move(name)), run_(std::move(run)), row_floats_(std::move(row_floats)), options_(options), dim_(0) {
  completer_ = std::thread([this] { completion_loop(); });
}

EmbedScheduler::~EmbedScheduler() {
  {
    std::lock_guard lock(done_mu_);
    stopping_ = true;
  }
  done_cv_.notify_all();
  completer_.join();
}

void EmbedScheduler::deliver(Delivery delivery) {
  if (delivery.empty()) return;
  {
    std::lock_guard lock(done_mu_);
    done_.push_back(std::move(delivery));
  }
  done_cv_.notify_one();
}

void EmbedScheduler::completion_loop() {
  std::unique_lock lock(done_mu_);
  for (;;) {
    done_cv_.wait(lock, [&] { return !done_.empty() || stopping_; });
    if (done_.empty()) return;  // stopping, and everything is delivered
    Delivery next = std::move(done_.front());
    done_.pop_front();
    lock.unlock();
    for (auto& [promise, value] : next) promise.set_value(std::move(value));
    lock.lock();
  }
}

Result<std::vector<EmbeddingFuture>> EmbedScheduler::submit(std::vector<std::vector<int32_t>> sequences,
                                                            CancelFlag cancel) {
  std::vector<EmbeddingFuture> futures;
  futures.reserve(sequences.size());
  {
    std::lock_guard lock(mu_);
    if (closed_) return close_error_;
    if (!queue_.empty() && queue_.size() + sequences.size() > options_.max_queued) {
      return make_error(ErrorCode::kOverloaded,
                        "model '" + name_ + "' is overloaded: " + std::to_string(queue_.size()) +
                            " inputs are waiting and this request adds " + std::to_string(sequences.size()) +
                            "; the queue holds at most " + std::to_string(options_.max_queued) +
                            " (--max-queued-requests); retry later");
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto& tokens : sequences) {
      Item item{std::move(tokens), {}, cancel, now};
      futures.push_back(item.promise.get_future());
      queue_.push_back(std::move(item));
    }
    stats_.queued = queue_.size();
  }
  wake();
  return futures;
}

std::size_t EmbedScheduler::cancel(const CancelFlag& cancel, const Error& error) {
  if (!cancel) return 0;
  cancel->store(true);
  std::vector<Item> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->cancel == cancel) {
        dropped.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    stats_.queued = queue_.size();
    stats_.cancelled += dropped.size();
  }
  for (auto& item : dropped) item.promise.set_value(error);
  return dropped.size();
}

bool EmbedScheduler::has_work() const {
  std::lock_guard lock(mu_);
  return !queue_.empty();
}

void EmbedScheduler::close(const Error& error) {
  std::deque<Item> dropped;
  {
    std::lock_guard lock(mu_);
    closed_ = true;
    close_error_ = error;
    dropped.swap(queue_);
    stats_.queued = 0;
    stats_.failed += dropped.size();
    stats_.sequences += dropped.size();
  }
  for (auto& item : dropped) item.promise.set_value(error);
}

EmbedStats EmbedScheduler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Result<std::vector<float>> EmbedScheduler::run_batch(std::vector<Item>& items) {
  std::vector<std::vector<int32_t>> sequences;
  sequences.reserve(items.size());
  std::size_t expected = 0;
  for (auto& item : items) {
    sequences.push_back(item.tokens);
    expected += row_floats_(item.tokens.size());
  }
  try {
    auto result = run_(sequences);
    if (!result.ok()) return result.error();
    if (result.value().size() != expected) {
      return make_error(ErrorCode::kInternal, "model '" + name_ + "' returned " +
                                                  std::to_string(result.value().size()) + " floats for " +
                                                  std::to_string(items.size()) + " sequences; expected " +
                                                  std::to_string(expected));
    }
    return std::move(result).value();
  } catch (const Exception& e) {
    return make_error(e.code(), "model '" + name_ + "' failed: " + e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, "model '" + name_ + "' failed: " + e.what());
  } catch (...) {
    return make_error(ErrorCode::kInternal, "model '" + name_ + "' failed with an unknown exception");
  }
}

std::size_t EmbedScheduler::step() {
  const auto started = std::chrono::steady_clock::now();
  std::vector<Item> batch;
  std::size_t tokens = 0;
  {
    std::lock_guard lock(mu_);
    std::size_t n = plan_batch(queue_.begin(), queue_.end(),
                               [](const Item& item) { return item.tokens.size(); }, options_.limits);
    batch.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      tokens += queue_.front().tokens.size();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    stats_.queued = queue_.size();
    if (n > 0) {
      stats_.batches++;
      stats_.largest_batch = std::max(stats_.largest_batch, n);
      stats_.max_batch_tokens = std::max(stats_.max_batch_tokens, tokens);
    }
  }
  if (batch.empty()) return 0;

  std::size_t failed = 0;
  Delivery delivery;
  delivery.reserve(batch.size());
  auto result = run_batch(batch);
  if (result.ok()) {
    const float* data = result.value().data();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const std::size_t n = row_floats_(batch[i].tokens.size());
      delivery.emplace_back(std::move(batch[i].promise), Embedding(data, data + n));
      data += n;
    }
  } else if (batch.size() == 1) {
    delivery.emplace_back(std::move(batch[0].promise), result.error());
    failed = 1;
  } else {
    // Isolate the failure: run each sequence alone so only the ones that fail by themselves fail.
    for (auto& item : batch) {
      std::vector<Item> single;
      single.push_back(std::move(item));
      auto one = run_batch(single);
      if (one.ok()) {
        delivery.emplace_back(std::move(single[0].promise), std::move(one).value());
      } else {
        delivery.emplace_back(std::move(single[0].promise), one.error());
        ++failed;
      }
    }
  }
  {
    std::lock_guard lock(mu_);  // before delivery: a woken waiter sees the stats of the batch that served it
    stats_.sequences += batch.size();
    stats_.failed += failed;
  }
  Metrics::Step record{batch.size(), tokens,
                       std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), {}};
  record.queue_waits.reserve(batch.size());
  for (const Item& item : batch)
    record.queue_waits.push_back(std::chrono::duration<double>(started - item.queued_at).count());
  Metrics::global().record_step(name_, record);  // before delivery: a woken waiter finds its step counted
  deliver(std::move(delivery));
  return std::max<std::size_t>(1, tokens);
}

}  // namespace fathom::engine
