#pragma once
// The loaded models: name -> model, its state, placement and the schedulers that serve it.
//
// The manager owns every model and the DeviceWorkers that run them; all model calls happen on those workers.
// Models share one worker per device (weighted-fair, one step at a time), except models served with
// ServeOptions::concurrent: each of those gets a worker of its own on its device, so its steps overlap the
// others' (on CUDA on its own stream, with a priority from stream_priority_levels(priority)). A model asking
// for concurrency whose implementation cannot overlap safely (Model::runs_concurrently() false) is served on
// the shared worker, with a warning. HTTP threads read only the immutable snapshot in LoadedModel (facts copied at load time, and the
// tokenizer, which is documented thread-safe) and talk to the model through its schedulers' queues.
//
// Thread-safety: all methods may be called from any thread. A LoadedModel stays valid (model included)
// for as long as a caller holds its shared_ptr, even across unload().
#include <atomic>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "engine/device_worker.h"
#include "engine/embed_scheduler.h"
#include "engine/speech_scheduler.h"
#include "models/model.h"
#include "models/registry.h"

namespace fathom::engine {

// kFailed: load() failed; the entry stays listed (with its error) until the name is loaded again or unloaded.
enum class ModelState { kLoading, kReady, kUnloading, kFailed };
const char* model_state_name(ModelState state);  // "loading", "ready", "unloading", "failed"

// Embedding facts copied from the model's Embedder at load time.
struct EmbedderFacts {
  const formats::Tokenizer* tokenizer = nullptr;  // owned by the model; thread-safe
  int max_input_tokens = 0;                       // tokens incl. specials
  int embedding_dim = 0;
  bool supports_matryoshka = false;
  std::vector<int> matryoshka_dimensions;
  bool normalizes_by_default = false;
  std::vector<std::pair<std::string, std::string>> prompts;  // Embedder::prompts(): name -> prepended text
  std::string default_prompt_name;                           // "" = none
  std::vector<models::TokenOutput> token_outputs;            // Embedder::token_outputs(): sparse / colbert
};

// Classifier (cross-encoder) facts copied from the model's Classifier at load time.
struct ClassifierFacts {
  const formats::Tokenizer* tokenizer = nullptr;  // owned by the model; thread-safe
  int max_input_tokens = 0;                       // tokens of a text or a pair, specials included
  std::vector<std::string> labels;                // id order; size() = logits per input
  models::ScoreActivation activation = models::ScoreActivation::kSigmoid;
};

// Per-model serving options.
struct ServeOptions {
  double priority = 1.0;               // share of its device relative to the other models there
  int max_batch_size = 256;            // sequences per batch (the token budget comes from LoadOptions)
  std::size_t max_queued = 1024;       // sequences waiting at once before requests get kOverloaded
  std::size_t memory_budget = 0;       // shown in listings: the budget the model was loaded with (0 = none)
  bool concurrent = false;             // run on a device worker of its own (see the file comment)
};

// CUDA stream priority levels (cuda::Stream) for a model of `priority`: 0 up to priority 1.5, then
// round(log2(priority)) (2 -> 1, 4 -> 2, 8 -> 3), clamped by the device's range when the stream is made.
int stream_priority_levels(double priority);

struct LoadedModel {
  std::string name;
  std::filesystem::path dir;           // empty for models added in-process
  std::atomic<ModelState> state{ModelState::kLoading};
  std::string error;                   // why loading failed; written before state becomes kFailed
  std::size_t memory_budget = 0;       // bytes; 0 = none (as asked at load)
  bool concurrent = false;             // served on a device worker of its own
  // Filled once the model is ready:
  models::ModelInfo info;
  std::string architecture;
  DType dtype = DType::kF32;
  models::Device device;
  std::size_t memory_bytes = 0;
  int64_t created = 0;                              // unix seconds when it became ready
  std::optional<EmbedderFacts> embedder;            // set when the model embeds
  std::shared_ptr<EmbedScheduler> embed_scheduler;  // set when the model embeds
  // One queue per per-token output (EmbedderFacts::token_outputs); rows: Embedder::embed_tokens().
  std::map<models::TokenOutput, std::shared_ptr<EmbedScheduler>> token_schedulers;
  std::shared_ptr<SpeechScheduler> speech_scheduler;  // set when the model transcribes / translates
  std::optional<ClassifierFacts> classifier;         // set when the model scores / classifies
  std::shared_ptr<EmbedScheduler> classify_scheduler;  // set when the model scores / classifies (rows: logits)

  bool has_task(models::Task task) const;
  // Bytes the model holds now (Model::memory_bytes(), read live: workspaces may grow with the first large
  // batches); memory_bytes above is the figure at load. 0 before the model is ready. Any thread.
  std::size_t memory_now() const;

 private:
  friend class ModelManager;
  std::unique_ptr<models::Model> model_;  // touched only by the device worker (and at load)
};

class ModelManager {
 public:
  ModelManager() = default;
  ~ModelManager();  // shutdown()
  ModelManager(const ModelManager&) = delete;
  ModelManager& operator=(const ModelManager&) = delete;

  // Loads `reference` through the architecture registry and serves it as `name`. The reference is a model
  // directory or a Hugging Face Hub repository ORG/NAME[@REVISION], downloaded into the hub cache first
  // (hub::resolve_model_dir: an existing path always wins). The model is listed in state kLoading while it
  // downloads and loads. Fails if the name is taken or loading fails (the error names the model and the
  // directory; over its memory budget it also names the budget and the checkpoint's size); a failed load
  // stays listed as kFailed with that error until the name is loaded again or unload()ed.
  // Defined in model_loader.cpp.
  Status load(const std::string& name, const std::filesystem::path& reference, const models::LoadOptions& load_options,
              const ServeOptions& serve_options = {});
  // Serves an already constructed model (tests, plugins). `max_batch_tokens` is the batch token budget.
  Status add(const std::string& name, std::unique_ptr<models::Model> model, int max_batch_tokens,
             const ServeOptions& serve_options = {}, std::filesystem::path dir = {});
  // Stops serving `name`: refuses new requests, lets queued work finish, then releases the model (its memory
  // returns once the last request holding it has answered). A kFailed entry is simply removed.
  Status unload(const std::string& name);

  std::shared_ptr<const LoadedModel> find(const std::string& name) const;
  // Every model in name order, in whatever state.
  std::vector<std::shared_ptr<const LoadedModel>> list() const;

  // Refuses new work, finishes every queued request, stops the device workers. Idempotent.
  void shutdown();
  bool shutting_down() const { return shutting_down_.load(); }

  // The shared worker of `device` (created on first use).
  DeviceWorker& worker(const models::Device& device);
  // Device workers running now (shared ones and one per concurrent model).
  std::size_t worker_count() const;
  // Models stopped by a sticky device fault, over every device (DeviceWorker::faults()); never cleared.
  std::vector<DeviceWorker::Fault> faults() const;

 private:
  Status reserve(const std::string& name, const std::filesystem::path& dir, std::shared_ptr<LoadedModel>* out);
  void forget(const std::string& name);
  // The worker serving `entry`: its device's shared one, or for a concurrent model "<device>/<name>".
  DeviceWorker& worker_of(const LoadedModel& entry);

  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<LoadedModel>> models_;
  std::map<std::string, std::unique_ptr<DeviceWorker>> workers_;  // by device, or device/model (concurrent)
  std::atomic<bool> shutting_down_{false};
};

}  // namespace fathom::engine
