#pragma once
// The shared runtime of the encoder families described by an EncoderSpec (MPNet, NomicBERT, GTE
// "NewModel", ModernBERT): Model + Embedder over a packed variable-length batch without padding, pooling
// per the sentence-transformers files (mean when none), optional CUDA graphs per token bucket, f32 on CPU
// and f32/f16/bf16 on CUDA. One thread at a time calls embed() / classify().
//
// A spec with a classifier head (EncoderSpec::classifier: ModernBertForSequenceClassification) makes the
// model a Classifier instead of an Embedder: pooling as the head says, the head inside the same forward
// (so inside the CUDA graphs), raw logits downloaded as f32. Segments of packed ids are ignored (these
// encoders have no token types). With several labels the loaded model drops Task::kScore from its info.
//
// Load order: sentence-transformers files -> tokenizer.json -> checkpoint (through `load_weights`, which
// names the family's tensors) -> device runner (and every graph bucket captured on CUDA).
#include <filesystem>
#include <functional>
#include <memory>

#include <nlohmann/json.hpp>

#include "models/encoder/encoder_spec.h"
#include "models/encoder/weight_loader.h"
#include "models/model.h"
#include "models/registry.h"

namespace fathom::models::encoder {

// Fills `weights` for `spec` from the checkpoint behind `loader` (every tensor checked).
using WeightsFn = std::function<Status(WeightLoader& loader, const EncoderSpec& spec, EncoderWeights& weights)>;

// Loads DIR as `info`'s architecture with the network `spec` (already parsed from `config`).
Result<std::unique_ptr<Model>> load_encoder(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info, EncoderSpec spec,
                                            const WeightsFn& load_weights);

// The ModelInfo of a family served by this runtime (devices, dtypes and graphs of the build). Embedders
// serve kEmbed; classifier heads kScore + kClassify.
ModelInfo encoder_model_info(std::string name, std::vector<std::string> hf_architectures,
                             std::vector<std::string> model_types, std::vector<Task> tasks = {Task::kEmbed});

}  // namespace fathom::models::encoder
