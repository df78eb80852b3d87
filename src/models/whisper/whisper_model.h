#pragma once
// Whisper (WhisperForConditionalGeneration) as a fathom Model with the SpeechToText capability: the network
// (whisper_network.h) behind WhisperSpeech (speech.h), the tokenizer (tokenizer.json + tokenizer_config.json)
// and generation_config.json of the model directory.
//
// CPU computes in f32 (f16 / bf16 checkpoints are widened at load); CUDA in f32, f16 or bf16 (auto: the
// checkpoint's 16-bit type, else f16), with the 30 s log-mel of short audio computed on the device.
// Weights, caches and activations are charged to the model's MemoryAccount (LoadOptions::memory_budget).
// Not thread-safe beyond what SpeechToText documents: start() from any thread, step() from the device
// worker only.
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/registry.h"
#include "models/whisper/speech.h"
#include "models/whisper/whisper_network.h"

namespace fathom::models::whisper {

// Registry facts: HF architectures WhisperForConditionalGeneration / WhisperModel, model_type whisper,
// tasks transcribe + translate, CPU (f32) and CUDA (f32, f16, bf16).
ModelInfo whisper_model_info();

class WhisperModel final : public Model {
 public:
  // Loads DIR (config.json already parsed into `config`). Errors name the file, key or tensor at fault;
  // a device or dtype the ops cannot run is kUnsupported.
  // `slots` > 0 overrides the decoder cache slot count.
  static Result<std::unique_ptr<WhisperModel>> load(const std::filesystem::path& dir, const nlohmann::json& config,
                                                    const LoadOptions& options, const ModelInfo& info, int slots = 0);
  // Cache slots (concurrent windows x beams) the decoder holds: kDefaultSlots on CPU; on CUDA kCudaSlots,
  // fewer when the memory budget cannot hold that many caches and encoded windows (at least 1). Slot
  // memory is allocated on a slot's first use.
  static constexpr int kDefaultSlots = 16;
  static constexpr int kCudaSlots = 128;
  ~WhisperModel() override;

  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return architecture_; }
  DType dtype() const override { return dtype_; }
  Device device() const override { return device_; }
  std::size_t memory_bytes() const override { return account_.in_use(); }
  SpeechToText* as_speech_to_text() override { return speech_.get(); }
  // True when loaded with LoadOptions::concurrent: the runner then owns its stream, staging and GEMM
  // workspace, and every other device buffer (weights, slot caches, graphs) is the model's own.
  bool runs_concurrently() const override { return runner_ && runner_->concurrent(); }

  WhisperNetwork& network() { return *network_; }
  WhisperSpeech& speech() { return *speech_; }
  const WhisperConfig& config() const { return network_->config(); }

 private:
  WhisperModel(ModelInfo info, Device device, DType dtype, Allocator& allocator);

  ModelInfo info_;
  std::string architecture_;
  Device device_;
  DType dtype_;
  MemoryAccount account_;
  Workspace workspace_;
  ExecContext ctx_;
  std::unique_ptr<ops::DeviceRunner> runner_;  // the model's stream and staging
  std::unique_ptr<WhisperNetwork> network_;
  std::unique_ptr<WhisperSpeech> speech_;
};

// The registry's loader (returns the Model interface).
Result<std::unique_ptr<Model>> load_whisper(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info);

}  // namespace fathom::models::whisper
