#include "models/whisper/whisper_model.h"

#include "formats/tokenizer/tokenizer.h"
#include "base/log.h"
#include "ops/common.h"

namespace fathom::models::whisper {

ModelInfo whisper_model_info() {
  ModelInfo info;
  info.name = "whisper";
  info.hf_architectures = {"WhisperForConditionalGeneration", "WhisperModel"};
  info.model_types = {"whisper"};
  info.tasks = {Task::kTranscribe, Task::kTranslate};
  info.devices = {DeviceKind::kCpu, DeviceKind::kCuda};
  info.compute_dtypes = {DType::kF32, DType::kF16, DType::kBF16};
  info.cuda_graphs = true;  // decode steps replayed per batch bucket (LoadOptions::cuda_graphs)
  return info;
}

WhisperModel::WhisperModel(ModelInfo info, Device device, DType dtype, Allocator& allocator)
    : info_(std::move(info)), device_(device), dtype_(dtype), account_("whisper"), workspace_(allocator, &account_) {
  ctx_.device = device_;
  ctx_.allocator = &allocator;
  ctx_.account = &account_;
  ctx_.workspace = &workspace_;
}

WhisperModel::~WhisperModel() {
  if (runner_) (void)runner_->synchronize();
  speech_.reset();
  network_.reset();  // device memory goes before the runner's stream
}

Result<std::unique_ptr<WhisperModel>> WhisperModel::load(const std::filesystem::path& dir, const nlohmann::json& json,
                                                         const LoadOptions& options, const ModelInfo& info, int slots) {
  const DType dtype = resolve_compute_dtype(json, options);
  if (options.device.kind != DeviceKind::kCpu && options.device.kind != DeviceKind::kCuda)
    return make_error(ErrorCode::kUnsupported, "whisper runs on cpu or cuda; " + options.device.to_string() +
                                                   " was requested for " + dir.string());
  FATHOM_TRY(prepare_compute(dir, "whisper", dtype, options.device));
  Allocator* allocator = allocator_for(options.device);
  if (!allocator)
    return make_error(ErrorCode::kUnsupported, "no allocator for device " + options.device.to_string() + " in this build");
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

  std::unique_ptr<WhisperModel> m(new WhisperModel(info, options.device, dtype, *allocator));
  if (options.memory_budget) m->account_.set_budget(options.memory_budget);
  m->architecture_ = info.hf_architectures.empty() ? "whisper" : info.hf_architectures.front();
  if (json.contains("architectures") && json["architectures"].is_array() && !json["architectures"].empty() &&
      json["architectures"][0].is_string())
    m->architecture_ = json["architectures"][0].get<std::string>();
  FATHOM_ASSIGN_OR_RETURN(m->runner_, ops::DeviceRunner::create(options.device, runner_options(options)));
  m->ctx_.stream = m->runner_->stream();
  FATHOM_ASSIGN_OR_RETURN(auto weights, WhisperWeights::load(dir, cfg, *m->ctx_.allocator, &m->account_, dtype));
  int n_slots = slots > 0 ? slots : (options.device.kind == DeviceKind::kCuda ? kCudaSlots : kDefaultSlots);
  if (slots <= 0 && options.memory_budget > 0 && options.device.kind == DeviceKind::kCuda) {
    // Each running window needs a slot cache and (at worst) its own encoded window.
    const std::size_t es = dtype_size(dtype), d = static_cast<std::size_t>(cfg.d_model);
    const std::size_t layers = static_cast<std::size_t>(cfg.decoder_layers);
    const std::size_t per = (layers * 2 * d * static_cast<std::size_t>(cfg.max_target_positions + cfg.max_source_positions) + 2 * d) * es;
    const std::size_t used = m->account_.in_use();
    const std::size_t left = options.memory_budget > used ? options.memory_budget - used : 0;
    const int fit = static_cast<int>(std::min<std::size_t>(left / per, static_cast<std::size_t>(kCudaSlots)));
    if (fit < n_slots) {
      n_slots = std::max(1, fit);
      FATHOM_LOG(kWarn) << dir.string() << ": the memory budget holds " << n_slots << " whisper decoder slots";
    }
  }
  m->network_ = std::make_unique<WhisperNetwork>(cfg, std::move(weights), m->ctx_, *m->runner_, n_slots,
                                                 options.cuda_graphs);
  m->speech_ = std::make_unique<WhisperSpeech>(*m->network_, std::move(tokenizer), std::move(gen));
  return m;
}

Result<std::unique_ptr<Model>> load_whisper(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info) {
  FATHOM_ASSIGN_OR_RETURN(auto m, WhisperModel::load(dir, config, options, info));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace fathom::models::whisper
