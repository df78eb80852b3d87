#pragma once
// The architecture registry: one explicit table of built-in architectures (registry.cpp), plus entries
// that plugins add through their one exported entry point. A model directory is matched on config.json
// `architectures[0]` first, then `model_type`.
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "models/model.h"
#include "ops/device_runner.h"

namespace fathom::models {

// How to place and run a model. Every field has a safe default.
struct LoadOptions {
  Device device;                      // where the model runs
  std::optional<DType> dtype;         // nullopt = auto: f32 on CPU; the checkpoint's 16-bit type on CUDA
  bool cuda_graphs = true;            // capture forward passes in CUDA graphs where the model allows it
  std::size_t memory_budget = 0;      // bytes this model may use on its device; 0 = no budget
  int max_batch_tokens = 16384;       // token budget of one batch
  // Its steps run on a device worker of its own, overlapping other models' on the device: on CUDA the model
  // takes a private GEMM workspace for its stream (ops::RunnerOptions::concurrent). Models that honour it
  // report Model::runs_concurrently(). engine::ModelManager::load sets it from ServeOptions::concurrent.
  bool concurrent = false;
  int stream_priority = 0;            // CUDA stream priority levels above the default (cuda::Stream); 0 = default
  // CUDA only: the model's kernels run on an SM partition of at least this many SMs (cuda::Stream; rounded
  // up to the device's granularity, 8 on sm_90), leaving the other SMs to the device's other models;
  // 0 = every SM. engine::ModelManager::load refuses it for other devices.
  int max_sms = 0;
};

// The compute dtype a built-in model loads in: LoadOptions::dtype when set; otherwise f32 on CPU and, on
// CUDA, the checkpoint's 16-bit type (config.json `torch_dtype` or `dtype`: bfloat16 / float16), else f16.
DType resolve_compute_dtype(const nlohmann::json& config, const LoadOptions& options);

// config.json `architectures[0]`, else its `model_type`, else `fallback`.
std::string config_architecture(const nlohmann::json& config, const std::string& fallback);

// Fills `info.devices` / `info.compute_dtypes` with what this build computes: cpu in f32, and, in builds with
// the CUDA backend, cuda in f32 / f16 / bf16 (`cuda_graphs` then says whether the family captures graphs).
void set_build_devices(ModelInfo& info, bool cuda_graphs);

// Checks that `dtype` computes on `device` in this build (kUnsupported naming DIR and `family` otherwise) and
// prepares the device (ops::prepare_device): what every loader does before allocating.
Status prepare_compute(const std::filesystem::path& dir, const std::string& family, DType dtype, const Device& device);

// The device runner options a model's LoadOptions ask for (stream priority, concurrent, SM partition): what a
// model passes to ops::DeviceRunner::create to honour `concurrent` and `max_sms` like the built-in families.
ops::RunnerOptions runner_options(const LoadOptions& options);

using LoadFn = std::function<Result<std::unique_ptr<Model>>(
    const std::filesystem::path& dir, const nlohmann::json& config, const LoadOptions& options)>;

// What `fathom inspect` reports about a directory beyond ModelInfo, without loading weights: its components
// as (label, description) rows ("encoder", "decoder", "prompt", ...), or the error naming the file or key
// that is missing or wrong (the same error the loader would give), so that a user learns why the
// architecture's endpoints are not exposed. Optional.
using InspectFn = std::function<Result<std::vector<std::pair<std::string, std::string>>>(
    const std::filesystem::path& dir, const nlohmann::json& config)>;

struct Architecture {
  ModelInfo info;
  LoadFn load;
  InspectFn inspect = {};
};

struct MatchResult {
  const Architecture* architecture = nullptr;
  std::string matched_on;  // e.g. "architectures[0] = BertModel" or "model_type = bert"
  nlohmann::json config;   // the parsed config.json
};

class Registry {
 public:
  // The process-wide registry, holding the built-in architectures.
  static Registry& global();

  // Adds an architecture (plugins). Fails when one of its HF architecture names is already taken.
  Status add(Architecture architecture);
  const std::vector<std::unique_ptr<Architecture>>& architectures() const { return architectures_; }

  // Reads DIR/config.json and finds the architecture that serves it. The error says exactly why nothing
  // matched: missing/invalid config.json, or the architectures/model_type found and the ones supported.
  Result<MatchResult> match(const std::filesystem::path& dir) const;
  // match() then the architecture's loader; checks that declared tasks have their interfaces.
  Result<std::unique_ptr<Model>> load(const std::filesystem::path& dir, const LoadOptions& options) const;

 private:
  std::vector<std::unique_ptr<Architecture>> architectures_;
};

}  // namespace fathom::models
