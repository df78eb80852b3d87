#include "models/whisper/whisper_model.h"

#include "formats/tokenizer/tokenizer.h"
#include "ops/common.h"

namespace fathom::models::whisper {

ModelInfo whisper_model_info() {
  ModelInfo info;
  info.name = "whisper";
  info.hf_architectures = {"WhisperForConditionalGeneration", "WhisperModel"};
  info.model_types = {"whisper"};
  info.tasks = {Task::kTranscribe, Task::kTranslate};
  info.devices = {DeviceKind::kCpu};
  info.compute_dtypes = {DType::kF32};
  info.cuda_graphs = false;
  return info;
}

WhisperModel::WhisperModel(ModelInfo info, Device device)
    : info_(std::move(info)), device_(device), account_("whisper"), workspace_(cpu_allocator(), &account_) {
  ctx_.device = device_;
  ctx_.allocator = &cpu_allocator();
  ctx_.account = &account_;
  ctx_.workspace = &workspace_;
}

Result<std::unique_ptr<WhisperModel>> WhisperModel::load(const std::filesystem::path& dir, const nlohmann::json& json,
                                                         const LoadOptions& options, const ModelInfo& info) {
  if (options.device.kind != DeviceKind::kCpu)
    return make_error(ErrorCode::kUnsupported, "whisper runs on cpu only in this build; " + options.device.to_string() +
                                                   " was requested for " + dir.string());
  if (options.dtype && *options.dtype != DType::kF32)
    return make_error(ErrorCode::kUnsupported, "whisper on cpu computes in float32; dtype " +
                                                   std::string(dtype_name(*options.dtype)) + " was requested");
  if (!ops::compute_supported(options.device.kind, DType::kF32))
    return make_error(ErrorCode::kUnsupported, "ops cannot compute float32 on " + options.device.to_string());
  const std::string origin = (dir / "config.json").string();
  FATHOM_ASSIGN_OR_RETURN(WhisperConfig cfg, parse_whisper_config(json, origin));
  if (cfg.scale_embedding)
    return make_error(ErrorCode::kUnsupported, origin + ": scale_embedding = true is not supported");
  if (cfg.d_model % cfg.encoder_attention_heads != 0 || cfg.d_model % cfg.decoder_attention_heads != 0)
    return make_error(ErrorCode::kLoadFailed, origin + ": d_model " + std::to_string(cfg.d_model) +
                                                  " is not a multiple of the attention heads");
  FATHOM_ASSIGN_OR_RETURN(GenerationConfig gen, load_generation_config(dir, cfg));
  FATHOM_ASSIGN_OR_RETURN(auto tokenizer, formats::Tokenizer::load(dir / "tokenizer.json"));
  if (tokenizer->vocab_size() > cfg.vocab_size)
    return make_error(ErrorCode::kLoadFailed, (dir / "tokenizer.json").string() + " has " +
                                                  std::to_string(tokenizer->vocab_size()) +
                                                  " tokens but config.json vocab_size is " + std::to_string(cfg.vocab_size));

  std::unique_ptr<WhisperModel> m(new WhisperModel(info, options.device));
  if (options.memory_budget) m->account_.set_budget(options.memory_budget);
  m->architecture_ = info.hf_architectures.empty() ? "whisper" : info.hf_architectures.front();
  if (json.contains("architectures") && json["architectures"].is_array() && !json["architectures"].empty() &&
      json["architectures"][0].is_string())
    m->architecture_ = json["architectures"][0].get<std::string>();
  FATHOM_ASSIGN_OR_RETURN(auto weights, WhisperWeights::load(dir, cfg, *m->ctx_.allocator, &m->account_));
  m->network_ = std::make_unique<WhisperNetwork>(cfg, std::move(weights), m->ctx_, kDefaultSlots);
  m->speech_ = std::make_unique<WhisperSpeech>(*m->network_, std::move(tokenizer), std::move(gen));
  return m;
}

Result<std::unique_ptr<Model>> load_whisper(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info) {
  FATHOM_ASSIGN_OR_RETURN(auto m, WhisperModel::load(dir, config, options, info));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace fathom::models::whisper
