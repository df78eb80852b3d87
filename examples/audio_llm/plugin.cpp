// The audio_llm example plugin's entry points. What a custom audio-LLM needs, and all it needs, to be served on
// /v1/audio/transcriptions:
//   1. declare the capability: ModelInfo::tasks = {Task::kTranscribe} (the route appears for every model whose
//      architecture declares it; nothing else is registered anywhere);
//   2. read its own directory layout into fathom's audio-LLM parts, prompt included (example_layout.cpp);
//   3. hand the parts to fathom::models::audiollm::assemble_audio_llm(), which builds fathom's SenseVoice encoder,
//      adaptor and decoder-LLM (paged KV cache, continuous batching, CUDA graph decode steps) and returns a Model
//      with the SpeechToText capability;
//   4. optionally describe the directory for `fathom inspect` and the startup table (Architecture::inspect), so
//      that a missing file or key is named there with the endpoint it costs.
#include "example_layout.h"
#include "models/audiollm/funasr_nano_model.h"
#include "models/plugin_api.h"
#include "ops/common.h"

FATHOM_PLUGIN_DEFINE_VERSION()

FATHOM_PLUGIN_EXPORT int fathom_register_plugin(const FathomPluginContext* ctx) {
  using namespace fathom::models;
  Architecture a;
  a.info.name = "example-audio-llm";
  a.info.hf_architectures = {audio_llm_example::kArchitecture};
  a.info.model_types = {"example_audio_llm"};
  a.info.tasks = {Task::kTranscribe};
  a.info.devices = {fathom::DeviceKind::kCpu};
  a.info.compute_dtypes = {fathom::DType::kF32};
  if (fathom::ops::compute_supported(fathom::DeviceKind::kCuda, fathom::DType::kF16)) {
    a.info.devices.push_back(fathom::DeviceKind::kCuda);
    a.info.compute_dtypes = {fathom::DType::kF32, fathom::DType::kF16, fathom::DType::kBF16};
    a.info.cuda_graphs = true;
  }
  a.info.source = ctx->plugin_path;
  ModelInfo info = a.info;
  a.load = [info](const std::filesystem::path& dir, const nlohmann::json& config, const LoadOptions& options)
      -> fathom::Result<std::unique_ptr<Model>> {
    FATHOM_ASSIGN_OR_RETURN(auto parts, audio_llm_example::resolve(dir, config));
    return audiollm::assemble_audio_llm(std::move(parts), audio_llm_example::kArchitecture, dir, config, options, info);
  };
  a.inspect = [](const std::filesystem::path& dir, const nlohmann::json& config)
      -> fathom::Result<std::vector<std::pair<std::string, std::string>>> {
    FATHOM_ASSIGN_OR_RETURN(auto parts, audio_llm_example::resolve(dir, config));
    return audiollm::describe_audio_llm(parts, dir);
  };
  return ctx->add_architecture(ctx, &a) == 0 ? 0 : 1;
}
