#pragma once
// Whisper (WhisperForConditionalGeneration) as a fathom Model with the SpeechToText capability: the network
// (whisper_network.h) behind WhisperSpeech (speech.h), the tokenizer (tokenizer.json + tokenizer_config.json)
// and generation_config.json of the model directory.
//
// CPU computes in f32 (f16 / bf16 checkpoints are widened at load). Not thread-safe beyond what
// SpeechToText documents: start() from any thread, step() from the device worker only.
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/model.h"
#include "models/registry.h"
#include "models/whisper/speech.h"
#include "models/whisper/whisper_network.h"

namespace fathom::models::whisper {

// Registry facts: HF architectures WhisperForConditionalGeneration / WhisperModel, model_type whisper,
// tasks transcribe + translate, CPU, f32.
ModelInfo whisper_model_info();

class WhisperModel final : public Model {
 public:
  // Loads DIR (config.json already parsed into `config`). Errors name the file, key or tensor at fault;
  // a device or dtype the ops cannot run is kUnsupported.
  static Result<std::unique_ptr<WhisperModel>> load(const std::filesystem::path& dir, const nlohmann::json& config,
                                                    const LoadOptions& options, const ModelInfo& info);
  // Cache slots (concurrent windows x beams) the decoder holds.
  static constexpr int kDefaultSlots = 16;

  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return architecture_; }
  DType dtype() const override { return DType::kF32; }
  Device device() const override { return device_; }
  std::size_t memory_bytes() const override { return account_.in_use(); }
  SpeechToText* as_speech_to_text() override { return speech_.get(); }

  WhisperNetwork& network() { return *network_; }
  WhisperSpeech& speech() { return *speech_; }
  const WhisperConfig& config() const { return network_->config(); }

 private:
  WhisperModel(ModelInfo info, Device device);

  ModelInfo info_;
  std::string architecture_;
  Device device_;
  MemoryAccount account_;
  Workspace workspace_;
  ExecContext ctx_;
  std::unique_ptr<WhisperNetwork> network_;
  std::unique_ptr<WhisperSpeech> speech_;
};

// The registry's loader (returns the Model interface).
Result<std::unique_ptr<Model>> load_whisper(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info);

}  // namespace fathom::models::whisper
