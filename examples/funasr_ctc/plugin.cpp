// The funasr_ctc plugin's entry points: registers the FunASRCTCModel architecture with fathom.
#include "ctc_model.h"
#include "models/plugin_api.h"

FATHOM_PLUGIN_DEFINE_VERSION()

FATHOM_PLUGIN_EXPORT int fathom_register_plugin(const FathomPluginContext* ctx) {
  using namespace fathom::models;
  Architecture a;
  a.info.name = "funasr-ctc";
  a.info.hf_architectures = {funasr_ctc::kArchitecture};
  a.info.model_types = {"funasr_ctc"};
  a.info.tasks = {Task::kTranscribe};
  a.info.devices = {fathom::DeviceKind::kCpu};
  a.info.compute_dtypes = {fathom::DType::kF32};
  a.info.cuda_graphs = false;
  a.info.source = ctx->plugin_path;  // the loader sets the registry entry's source to this path too
  ModelInfo info = a.info;
  a.load = [info](const std::filesystem::path& dir, const nlohmann::json& config, const LoadOptions& options) {
    return funasr_ctc::load_model(dir, config, options, info);
  };
  return ctx->add_architecture(ctx, &a) == 0 ? 0 : 1;
}

// Diagnostics for tests (see diagnostics.h).
FATHOM_PLUGIN_EXPORT fathom::Status funasr_ctc_run_diagnostics(fathom::models::Model* model,
                                                               const std::vector<float>& samples,
                                                               funasr_ctc::CtcOutputs* out) {
  return funasr_ctc::run_diagnostics(model, samples, out);
}
