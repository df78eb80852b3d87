#pragma once
// A fake embedding model for engine and server tests.
//
// Its "embedding" of a sequence is a deterministic function of the ids: v[0] = length, v[1] = sum of ids,
// v[2] = first id, v[3..dim) = (i + first id) — so tests can check that every request got its own vector.
// Hooks: an optional gate blocks embed() until opened; ids kFailId make the batch return an error and
// kThrowId make it throw; every batch is logged (model name and sizes) into a shared log.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "formats/tokenizer/tokenizer.h"
#include "models/model.h"

namespace fathom::testing {

inline constexpr int32_t kFailId = 666;
inline constexpr int32_t kThrowId = 777;

// Blocks callers of wait() until open().
class Gate {
 public:
  explicit Gate(bool open = false) : open_(open) {}
  void open() {
    { std::lock_guard lock(mu_); open_ = true; }
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mu_);
    waiting_++;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  // Blocks until at least `n` callers have reached wait().
  void await_waiters(int n) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return waiting_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_;
  int waiting_ = 0;
};

struct BatchRecord {
  std::string model;
  std::size_t size = 0;
  std::size_t longest = 0;
  std::size_t tokens = 0;  // summed over the batch's sequences
};

class BatchLog {
 public:
  void add(BatchRecord r) { std::lock_guard lock(mu_); records_.push_back(std::move(r)); }
  std::vector<BatchRecord> records() const { std::lock_guard lock(mu_); return records_; }

 private:
  mutable std::mutex mu_;
  std::vector<BatchRecord> records_;
};

inline std::vector<float> fake_embedding(const std::vector<int32_t>& ids, int dim) {
  std::vector<float> v(dim, 0.0f);
  float sum = 0;
  for (int32_t id : ids) sum += static_cast<float>(id);
  v[0] = static_cast<float>(ids.size());
  if (dim > 1) v[1] = sum;
  if (dim > 2) v[2] = ids.empty() ? 0.0f : static_cast<float>(ids[0]);
  for (int i = 3; i < dim; ++i) v[i] = static_cast<float>(i + (ids.empty() ? 0 : ids[0]));
  return v;
}

class FakeEmbedder final : public models::Embedder {
 public:
  FakeEmbedder(std::string name, int dim, std::shared_ptr<BatchLog> log, std::shared_ptr<Gate> gate,
               std::shared_ptr<const formats::Tokenizer> tokenizer)
      : name_(std::move(name)), dim_(dim), log_(std::move(log)), gate_(std::move(gate)),
        tokenizer_(std::move(tokenizer)) {}

  const formats::Tokenizer& tokenizer() const override {
    // Without a real tokenizer the engine only takes this reference's address; it never calls it.
    if (tokenizer_) return *tokenizer_;
    return *std::launder(reinterpret_cast<const formats::Tokenizer*>(&placeholder_));
  }
  int max_input_tokens() const override { return 64; }
  int embedding_dim() const override { return dim_; }
  bool supports_matryoshka() const override { return matryoshka_; }
  std::vector<int> matryoshka_dimensions() const override { return matryoshka_ ? std::vector<int>{2, 4, dim_} : std::vector<int>{}; }
  bool normalizes_by_default() const override { return false; }

  Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) override {
    if (gate_) gate_->wait();
    // Busy for busy_ per call (spinning, as a device-bound step would hold the worker).
    for (const auto until = std::chrono::steady_clock::now() + busy_; std::chrono::steady_clock::now() < until;) {
    }
    std::size_t longest = 0, tokens = 0;
    for (const auto& s : sequences) {
      longest = std::max(longest, s.size());
      tokens += s.size();
    }
    if (log_) log_->add({name_, sequences.size(), longest, tokens});
    calls_++;
    std::vector<float> out;
    for (const auto& s : sequences) {
      if (std::find(s.begin(), s.end(), kFailId) != s.end()) {
        return make_error(ErrorCode::kInvalidArgument, "fake model rejects id 666");
      }
      if (std::find(s.begin(), s.end(), kThrowId) != s.end()) throw std::runtime_error("fake model threw on id 777");
      auto v = fake_embedding(s, dim_);
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  }

  bool matryoshka_ = false;
  std::chrono::microseconds busy_{0};  // how long each embed() call takes at least
  std::atomic<int> calls_{0};

 private:
  std::string name_;
  int dim_;
  std::shared_ptr<BatchLog> log_;
  std::shared_ptr<Gate> gate_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  alignas(formats::Tokenizer) unsigned char placeholder_[sizeof(formats::Tokenizer)] = {};
};

class FakeModel final : public models::Model {
 public:
  FakeModel(std::string name, int dim = 8, std::shared_ptr<BatchLog> log = nullptr, std::shared_ptr<Gate> gate = nullptr,
            std::shared_ptr<const formats::Tokenizer> tokenizer = nullptr,
            std::vector<models::Task> tasks = {models::Task::kEmbed})
      : embedder_(name, dim, std::move(log), std::move(gate), std::move(tokenizer)) {
    info_.name = "fake";
    info_.hf_architectures = {"FakeModel"};
    info_.tasks = std::move(tasks);
    info_.devices = {models::DeviceKind::kCpu};
    info_.compute_dtypes = {DType::kF32};
  }
  const models::ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return "FakeModel"; }
  DType dtype() const override { return DType::kF32; }
  models::Device device() const override { return {}; }
  std::size_t memory_bytes() const override { return 1234; }
  models::Embedder* as_embedder() override { return has_embed() ? &embedder_ : nullptr; }
  FakeEmbedder& fake() { return embedder_; }
  bool has_embed() const {
    return std::find(info_.tasks.begin(), info_.tasks.end(), models::Task::kEmbed) != info_.tasks.end();
  }

 private:
  models::ModelInfo info_;
  FakeEmbedder embedder_;
};

}  // namespace fathom::testing
