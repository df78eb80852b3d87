#include <algorithm>
#include <iterator>
#include "models/registry.h"

#include "formats/json_file.h"
#include "models/audiollm/funasr_nano_model.h"
#include "models/audiollm/funasr_nano_parts.h"
#include "models/bert/bert_model.h"
#include "models/decoder/decoder_embedder.h"
#include "models/gte/gte_model.h"
#include "models/modernbert/modernbert_model.h"
#include "models/mpnet/mpnet_model.h"
#include "models/nomic_bert/nomic_bert_model.h"
#include "models/whisper/whisper_model.h"
#include "ops/common.h"

namespace fathom::models {
namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The built-in architectures: one explicit table. Adding an architecture = one entry here, one folder
// under models/, one fixture under tests/fixtures/models/.
std::vector<Architecture> builtin_architectures() {
  std::vector<Architecture> out;
  auto bert_like = [&](std::string name, std::vector<std::string> archs, std::vector<std::string> types, bool roberta,
                       std::vector<Task> tasks = {Task::kEmbed}) {
    Architecture a;
    a.info.name = std::move(name);
    a.info.hf_architectures = std::move(archs);
    a.info.model_types = std::move(types);
    a.info.tasks = std::move(tasks);
    set_build_devices(a.info, /*cuda_graphs=*/true);  // whole forward captured per token bucket
    ModelInfo info = a.info;
    a.load = [info, roberta](const std::filesystem::path& dir, const nlohmann::json& config, const LoadOptions& options) {
      return bert::load_bert_family(dir, config, options, info, roberta);
    };
    out.push_back(std::move(a));
  };
  // Only the bare encoder and the pre-training heads (masked LM, pre-training): sentence-transformers embeds
  // with the encoder of such checkpoints and drops the LM head, as fathom does. A task head
  // (`*ForSequenceClassification`, ...) is refused by Registry::match (refused_head), never served as an embedder.
  bert_like("bert", {"BertModel", "BertForMaskedLM", "BertForPreTraining"}, {"bert"}, false);
  bert_like("roberta", {"RobertaModel", "RobertaForMaskedLM"}, {"roberta"}, true);
  bert_like("xlm-roberta", {"XLMRobertaModel", "XLMRobertaForMaskedLM"}, {"xlm-roberta"}, true);
  // Sequence-classification heads: cross-encoders (one logit: score + rerank) and classifiers (several labels:
  // classify only; the loaded model drops score). Matched on the architecture only, never on model_type.
  const std::vector<Task> head_tasks = {Task::kScore, Task::kClassify};
  bert_like("bert-classifier", {"BertForSequenceClassification"}, {}, false, head_tasks);
  bert_like("roberta-classifier", {"RobertaForSequenceClassification"}, {}, true, head_tasks);
  bert_like("xlm-roberta-classifier", {"XLMRobertaForSequenceClassification"}, {}, true, head_tasks);
  // Encoder families on the shared encoder runtime (models/encoder).
  auto encoder_family = [&](encoder::EncoderFamily family) {
    ModelInfo info = family.info;
    out.push_back({std::move(info), [family = std::move(family)](const std::filesystem::path& dir,
                                                                 const nlohmann::json& config, const LoadOptions& options) {
                     return encoder::load_encoder_family(family, dir, config, options);
                   }});
  };
  encoder_family(mpnet::mpnet_family());
  // Hub architectures with remote code (config.json auto_map): matched by name, run by fathom's own code.
  encoder_family(nomic_bert::nomic_bert_family());
  encoder_family(gte::gte_family());
  encoder_family(modernbert::modernbert_family());
  // Its sequence-classification head (matched on the architecture only, like the BERT-family heads).
  encoder_family(modernbert::modernbert_classifier_family());
  // Decoder-LLM embedders: the decoder core with last-token pooling (Qwen3-Embedding). A causal LM directory
  // without sentence-transformers pooling is refused by the loader, naming modules.json.
  out.push_back({decoder::decoder_embedder_model_info(), [](const std::filesystem::path& dir, const nlohmann::json& config,
                                                           const LoadOptions& options) {
                   return decoder::load_decoder_embedder(dir, config, options, decoder::decoder_embedder_model_info());
                 },
                 decoder::inspect_decoder_embedder});
  out.push_back({whisper::whisper_model_info(), [](const std::filesystem::path& dir, const nlohmann::json& config,
                                                   const LoadOptions& options) {
                   return whisper::load_whisper(dir, config, options, whisper::whisper_model_info());
                 }});
  // Audio-LLMs: an audio encoder whose frames are spliced into a decoder LLM's chat prompt.
  out.push_back({audiollm::funasr_nano_model_info(), [](const std::filesystem::path& dir, const nlohmann::json& config,
                                                         const LoadOptions& options) {
                   return audiollm::load_funasr_nano(dir, config, options, audiollm::funasr_nano_model_info());
                 },
                 audiollm::inspect_funasr_nano});
  return out;
}

// A task head that fathom does not implement: its output is the head's, not the encoder's, so serving the
// encoder alone would return something else than the model computes. Returns the reason, or "" when `arch`
// is not such a head. Checked before the model_type fallback, which would otherwise pick the encoder.
std::string refused_head(const std::string& arch) {
  static const char* kHeads[] = {"ForTokenClassification", "ForQuestionAnswering",
                                 "ForMultipleChoice", "ForNextSentencePrediction", "ForCausalLM"};
  static const char* kFamilies[] = {"Bert", "Roberta", "XLMRoberta"};
  // The encoder-runtime families: every task head is refused but the classifiers fathom serves
  // (ModernBertForSequenceClassification: models/modernbert).
  static const char* kEncoderFamilies[] = {"MPNet", "NomicBert", "New", "ModernBert"};
  static const char* kServedEncoderHeads[] = {"ModernBertForSequenceClassification"};
  for (const char* family : kEncoderFamilies)
    for (const char* head : {"ForSequenceClassification", "ForTokenClassification", "ForQuestionAnswering",
                             "ForMultipleChoice"}) {
      if (arch != std::string(family) + head) continue;
      if (std::find(std::begin(kServedEncoderHeads), std::end(kServedEncoderHeads), arch) != std::end(kServedEncoderHeads))
        return "";
      const std::string classifier = std::string(family) + "ForSequenceClassification";
      const bool served_classifier = std::find(std::begin(kServedEncoderHeads), std::end(kServedEncoderHeads),
                                               classifier) != std::end(kServedEncoderHeads);
      return arch + " is a task head on the " + family +
             " encoder, which fathom does not implement (its output is the head's, so the encoder alone must "
             "not be served as an embedding model); embedding checkpoints of this family declare " + family +
             "Model" + (served_classifier ? ", rerankers and classifiers " + classifier : std::string());
    }
  for (const char* family : kFamilies)
    for (const char* head : kHeads)
      if (arch == std::string(family) + head)
        return arch + " is a task head on the " + family +
               " encoder, which fathom does not implement (its output is the head's, so the encoder alone must "
               "not be served as an embedding model); embedding checkpoints of this family declare " +
               family + "Model or " + family + "ForMaskedLM, rerankers and classifiers " + family +
               "ForSequenceClassification";
  return "";
}

}  // namespace

DType resolve_compute_dtype(const nlohmann::json& config, const LoadOptions& options) {
  if (options.dtype) return *options.dtype;
  if (options.device.kind != DeviceKind::kCuda) return DType::kF32;
  auto d = config.contains("torch_dtype") ? config["torch_dtype"] : config.value("dtype", nlohmann::json());
  auto parsed = d.is_string() ? parse_dtype(d.get<std::string>()) : std::nullopt;
  return parsed && (*parsed == DType::kBF16 || *parsed == DType::kF16) ? *parsed : DType::kF16;
}

std::string config_architecture(const nlohmann::json& config, const std::string& fallback) {
  if (auto it = config.find("architectures"); it != config.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    return (*it)[0].get<std::string>();
  if (auto it = config.find("model_type"); it != config.end() && it->is_string()) return it->get<std::string>();
  return fallback;
}

void set_build_devices(ModelInfo& info, bool cuda_graphs) {
  info.devices = {DeviceKind::kCpu};
  info.compute_dtypes = {DType::kF32};
  info.cuda_graphs = false;
  if (ops::compute_supported(DeviceKind::kCuda, DType::kF16)) {  // builds with the CUDA backend
    info.devices.push_back(DeviceKind::kCuda);
    info.compute_dtypes = {DType::kF32, DType::kF16, DType::kBF16};
    info.cuda_graphs = cuda_graphs;
  }
}

Status prepare_compute(const std::filesystem::path& dir, const std::string& family, DType dtype, const Device& device) {
  if (!ops::compute_supported(device.kind, dtype))
    return make_error(ErrorCode::kUnsupported, dir.string() + ": " + family + " cannot compute in " +
                                                   std::string(dtype_name(dtype)) + " on " + device.to_string() +
                                                   " in this build" +
                                                   (device.kind == DeviceKind::kCpu ? " (cpu computes in float32)" : ""));
  return ops::prepare_device(device);
}

ops::RunnerOptions runner_options(const LoadOptions& options) {
  return ops::RunnerOptions{options.stream_priority, options.concurrent, options.max_sms};
}

Registry& Registry::global() {
  static Registry* registry = [] {
    auto* r = new Registry();
    for (auto& a : builtin_architectures()) (void)r->add(std::move(a));
    return r;
  }();
  return *registry;
}

Status Registry::add(Architecture architecture) {
  for (const auto& existing : architectures_)
    for (const auto& name : architecture.info.hf_architectures)
      for (const auto& taken : existing->info.hf_architectures)
        if (name == taken)
          return make_error(ErrorCode::kInvalidArgument, "architecture '" + name + "' is already registered by '" +
                                                             existing->info.name + "' (" + existing->info.source + ")");
  architectures_.push_back(std::make_unique<Architecture>(std::move(architecture)));
  return Status::Ok();
}

Result<MatchResult> Registry::match(const std::filesystem::path& dir) const {
  const auto path = dir / "config.json";
  auto config = formats::read_json_file(path);
  if (!config.ok()) {
    Error e = config.error();
    e.message = "cannot load model from " + dir.string() + ": " + e.message;
    if (e.code == ErrorCode::kNotFound) e.message += " (a Hugging Face model directory needs config.json)";
    return e;
  }
  const nlohmann::json& j = config.value();
  if (!j.is_object()) return make_error(ErrorCode::kLoadFailed, path.string() + ": expected a JSON object");
  std::string arch, type;
  if (auto it = j.find("architectures"); it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    arch = (*it)[0].get<std::string>();
  if (auto it = j.find("model_type"); it != j.end() && it->is_string()) type = it->get<std::string>();

  if (std::string why = refused_head(arch); !why.empty())
    return make_error(ErrorCode::kUnsupported, path.string() + ": unsupported model: " + why);

  MatchResult m;
  m.config = j;
  if (!arch.empty())
    for (const auto& a : architectures_)
      for (const auto& name : a->info.hf_architectures)
        if (name == arch) {
          m.architecture = a.get();
          m.matched_on = "architectures[0] = " + arch;
          return m;
        }
  if (!type.empty())
    for (const auto& a : architectures_)
      for (const auto& name : a->info.model_types)
        if (name == type) {
          m.architecture = a.get();
          m.matched_on = "model_type = " + type;
          return m;
        }
  std::vector<std::string> archs, types;
  for (const auto& a : architectures_) {
    archs.insert(archs.end(), a->info.hf_architectures.begin(), a->info.hf_architectures.end());
    types.insert(types.end(), a->info.model_types.begin(), a->info.model_types.end());
  }
  std::string found = "architectures[0] = " + (arch.empty() ? std::string("(none)") : arch) +
                      ", model_type = " + (type.empty() ? std::string("(none)") : type);
  return make_error(ErrorCode::kUnsupported, path.string() + ": unsupported model (" + found +
                                                 "). Supported architectures: " + join(archs) +
                                                 "; supported model_type values: " + join(types));
}

Result<std::unique_ptr<Model>> Registry::load(const std::filesystem::path& dir, const LoadOptions& options) const {
  FATHOM_ASSIGN_OR_RETURN(MatchResult m, match(dir));
  const ModelInfo& info = m.architecture->info;
  bool device_ok = false;
  std::vector<std::string> devices;
  for (DeviceKind k : info.devices) {
    device_ok = device_ok || k == options.device.kind;
    devices.push_back(device_kind_name(k));
  }
  if (!device_ok)
    return make_error(ErrorCode::kUnsupported, dir.string() + ": " + info.name + " (" + m.matched_on + ") does not run on " +
                                                   options.device.to_string() + "; it runs on: " + join(devices));
  FATHOM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, m.architecture->load(dir, m.config, options));
  if (!model) return make_error(ErrorCode::kInternal, dir.string() + ": the " + info.name + " loader returned no model");
  // Every task the architecture declares needs its interface, unless the loaded model narrowed its own task
  // list (a classifier with several labels drops score); a model that states no tasks is held to them all.
  const std::vector<Task>& kept = model->info().tasks;
  for (Task t : info.tasks) {
    if (!kept.empty() && std::find(kept.begin(), kept.end(), t) == kept.end()) continue;
    bool has = true;
    switch (t) {
      case Task::kEmbed: has = model->as_embedder() != nullptr; break;
      case Task::kTranscribe:
      case Task::kTranslate: has = model->as_speech_to_text() != nullptr; break;
      case Task::kScore:
      case Task::kClassify: has = model->as_classifier() != nullptr; break;
      default: break;  // checked where the interface for the task is declared
    }
    if (!has)
      return make_error(ErrorCode::kInternal, dir.string() + ": " + info.name + " declares the task '" + task_name(t) +
                                                  "' but the loaded model does not implement its interface");
  }
  return model;
}

}  // namespace fathom::models
