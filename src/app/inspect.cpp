// `fathom inspect DIR`, `fathom models`, `fathom version`, and locating the demo models.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "formats/sentence_transformers.h"
#include "hub/resolve.h"
#include "models/bert/bert_config.h"
#include "models/gte/gte_model.h"
#include "models/modernbert/modernbert_model.h"
#include "models/mpnet/mpnet_model.h"
#include "models/nomic_bert/nomic_bert_model.h"
#include "models/classifier_labels.h"
#include "models/registry.h"

namespace fathom::app {
namespace {

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "-" : out;
}

std::vector<std::string> task_names(const std::vector<models::Task>& tasks) {
  std::vector<std::string> out;
  for (auto t : tasks) out.push_back(models::task_name(t));
  return out;
}

std::vector<std::string> endpoints_of(const std::vector<models::Task>& tasks) {
  std::vector<std::string> out;
  for (auto t : tasks)
    for (const auto& e : models::task_endpoints(t)) out.push_back(e);
  return out;
}

// Prints what the sentence-transformers files say about pooling, normalisation and length.
void describe_embedding(const std::filesystem::path& dir, const std::string& family, const nlohmann::json& config) {
  auto st = formats::read_sentence_transformers_config(dir);
  if (!st.ok()) {
    std::cout << "pooling:       cannot be served: " << st.error().message << "\n";
    return;
  }
  std::cout << "pooling:       " << formats::pooling_kind_name(st->pooling) << "  (from " << st->pooling_source << ")\n";
  std::cout << "normalize:     " << (st->normalize ? "yes (Normalize module in modules.json)" : "no (no Normalize module)")
            << "; requests may override with \"normalize\"\n";
  int position_limit = config.value("max_position_embeddings", 0);
  std::string position_note = "config.json max_position_embeddings";
  if (family == "bert" || family == "roberta" || family == "xlm-roberta") {
    auto bert = models::bert::parse_bert_config(config, dir / "config.json", family != "bert");
    if (!bert.ok()) {
      std::cout << "max tokens:    cannot be served: " << bert.error().message << "\n";
      return;
    }
    position_limit = bert->position_limit();
    if (bert->position_offset() > 0) position_note += " minus the RoBERTa position offset";
  } else if (family == "mpnet" || family == "nomic-bert" || family == "gte" || family == "modernbert") {
    const auto file = dir / "config.json";
    const models::encoder::EncoderFamily encoder = family == "mpnet"        ? models::mpnet::mpnet_family()
                                                 : family == "nomic-bert" ? models::nomic_bert::nomic_bert_family()
                                                 : family == "gte"        ? models::gte::gte_family()
                                                                          : models::modernbert::modernbert_family();
    auto limit = models::encoder::encoder_position_limit(encoder, config, file);
    if (!limit.ok()) {
      std::cout << "max tokens:    cannot be served: " << limit.error().message << "\n";
      return;
    }
    position_limit = *limit;
    position_note = family == "mpnet"        ? "config.json max_position_embeddings minus the pad_token_id + 1 offset"
                    : family == "nomic-bert" ? "config.json n_positions"
                                             : position_note;
  }
  auto tok_max = formats::read_tokenizer_max_length(dir);
  std::optional<int> tokenizer_max = tok_max.ok() ? tok_max.value() : std::nullopt;
  int max_tokens = formats::resolve_max_input_tokens(st->max_seq_length, tokenizer_max, position_limit);
  std::string from = st->max_seq_length ? "sentence_bert_config.json max_seq_length"
                     : tokenizer_max    ? "tokenizer_config.json model_max_length"
                                        : position_note;
  std::cout << "max tokens:    " << max_tokens << "  (from " << from << "; positions: " << position_limit << ")\n";
  if (config.contains("matryoshka_dimensions")) {
    std::cout << "dimensions:    " << config["matryoshka_dimensions"].dump() << "  (Matryoshka: \"dimensions\" accepted)\n";
  } else if (config.value("is_matryoshka", false)) {
    std::cout << "dimensions:    any up to the hidden size (is_matryoshka)\n";
  } else {
    std::cout << "dimensions:    not supported (no matryoshka_dimensions in config.json)\n";
  }
}

}  // namespace

ModelSpec parse_model_spec(const std::string& text) {
  ModelSpec spec;
  auto eq = text.find('=');
  if (eq != std::string::npos && text.substr(0, eq).find('/') == std::string::npos) {
    spec.name = text.substr(0, eq);
    spec.dir = text.substr(eq + 1);
  } else {
    spec.dir = text;
  }
  if (spec.name.empty() && !spec.dir.empty()) spec.name = hub::default_model_name(spec.dir.string());
  return spec;
}

std::vector<ModelSpec> find_demo_models(const std::string& argv0) {
  std::vector<std::filesystem::path> roots;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) exe = std::filesystem::absolute(argv0, ec);
  if (!exe.empty()) roots.push_back(exe.parent_path() / ".." / "tests" / "fixtures" / "models");
#ifdef FATHOM_SOURCE_DIR
  roots.push_back(std::filesystem::path(FATHOM_SOURCE_DIR) / "tests" / "fixtures" / "models");
#endif
  for (const auto& root : roots) {
    if (std::filesystem::exists(root / "bert-mean-norm" / "config.json", ec) &&
        std::filesystem::exists(root / "roberta-cls" / "config.json", ec)) {
      return {{"bert-mean-norm", (root / "bert-mean-norm").lexically_normal()},
              {"roberta-cls", (root / "roberta-cls").lexically_normal()}};
    }
  }
  return {};
}

int run_inspect(const std::string& reference) {
  auto resolved = hub::resolve_model_dir(reference);
  if (!resolved.ok()) {
    std::cout << "model:         " << reference << "\n";
    std::cout << "result:        not servable\n";
    std::cout << "reason:        " << resolved.error().message << "\n";
    return 1;
  }
  const std::filesystem::path dir = resolved.value();
  if (dir.string() != reference) std::cout << "model:         " << reference << "  (Hugging Face Hub)\n";
  std::cout << "directory:     " << dir.string() << "\n";
  auto match = models::Registry::global().match(dir);
  if (!match.ok()) {
    std::cout << "result:        not servable\n";
    std::cout << "reason:        " << match.error().message << "\n";
    return 1;
  }
  const auto& arch = *match.value().architecture;
  const auto& config = match.value().config;
  std::cout << "architecture:  " << arch.info.name << "  (matched on " << match.value().matched_on << ")\n";
  // A several-label head classifies only (no score / rerank), as the loaded model says.
  models::ModelInfo info = arch.info;
  if (std::find(info.tasks.begin(), info.tasks.end(), models::Task::kClassify) != info.tasks.end())
    if (auto labels = models::parse_classifier_labels(config, dir / "config.json"); labels.ok())
      models::narrow_classifier_tasks(info, labels.value());
  std::cout << "tasks:         " << join(task_names(info.tasks)) << "\n";
  std::cout << "endpoints:     " << join(endpoints_of(info.tasks)) << "\n";
  std::vector<std::string> devices, dtypes;
  for (auto d : arch.info.devices) devices.push_back(device_kind_name(d));
  for (auto d : arch.info.compute_dtypes) dtypes.push_back(std::string(dtype_name(d)));
  std::cout << "devices:       " << join(devices) << "\n";
  std::cout << "dtypes:        " << join(dtypes) << "\n";
  std::string checkpoint = config.value("torch_dtype", config.value("dtype", std::string("-")));
  std::cout << "checkpoint:    " << checkpoint << "\n";
  for (auto t : info.tasks) {
    if (t == models::Task::kEmbed) describe_embedding(dir, arch.info.name, config);
  }
  std::cout << "source:        " << arch.info.source << "\n";
  if (arch.inspect) {
    auto rows = arch.inspect(dir, config);
    if (!rows.ok()) {
      std::cout << "result:        not servable\n";
      std::cout << "reason:        " << rows.error().message << "\n";
      std::cout << "not exposed:   " << join(endpoints_of(info.tasks)) << "\n";
      return 1;
    }
    for (const auto& [label, text] : rows.value()) {
      std::string head = label + ":";
      head.resize(std::max<std::size_t>(head.size() + 1, 15), ' ');
      std::cout << head << text << "\n";
    }
  }
  return 0;
}

int run_download(const std::string& reference) {
  auto ref = hub::parse_hub_ref(reference);
  if (!ref) {
    std::cerr << "fathom download: '" << reference << "' is not a Hugging Face Hub reference ORG/NAME[@REVISION]\n";
    return 2;
  }
  auto snapshot = hub::fetch_snapshot(*ref, hub::HubSettings::from_environment());
  if (!snapshot.ok()) {
    std::cerr << "fathom download: " << snapshot.error().message << "\n";
    return 1;
  }
  std::cout << snapshot->string() << std::endl;
  return 0;
}

int run_models() {
  const auto& archs = models::Registry::global().architectures();
  if (archs.empty()) {
    std::cout << "no architectures are registered\n";
    return 1;
  }
  for (const auto& a : archs) {
    std::vector<std::string> devices, dtypes;
    for (auto d : a->info.devices) devices.push_back(device_kind_name(d));
    for (auto d : a->info.compute_dtypes) dtypes.push_back(std::string(dtype_name(d)));
    std::cout << a->info.name << "\n"
              << "  matches:   " << join(a->info.hf_architectures)
              << (a->info.model_types.empty() ? "" : "; model_type " + join(a->info.model_types)) << "\n"
              << "  tasks:     " << join(task_names(a->info.tasks)) << "  (" << join(endpoints_of(a->info.tasks)) << ")\n"
              << "  devices:   " << join(devices) << "\n"
              << "  dtypes:    " << join(dtypes) << "\n"
              << "  source:    " << a->info.source << "\n";
  }
  return 0;
}

int run_version() {
  std::cout << "fathom " << FATHOM_VERSION << (FATHOM_WITH_CUDA ? " (CUDA)" : " (CPU only)") << "\n";
  return 0;
}

}  // namespace fathom::app
