#include "hub/file_selection.h"

#include <algorithm>
#include <set>

namespace fathom::hub {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Weights in a format fathom cannot load.
bool unsupported_weights(const std::string& name) {
  for (const char* ext : {".bin", ".pt", ".pth", ".h5", ".msgpack", ".onnx", ".onnx_data", ".gguf", ".ckpt", ".ot"}) {
    if (ends_with(name, ext)) return true;
  }
  return name.find(".bin.index.json") != std::string::npos || name.find(".h5.index.json") != std::string::npos ||
         name.find(".msgpack.index.json") != std::string::npos;
}

bool vocabulary_file(const std::string& name) {
  return name == "vocab.txt" || name == "vocab.json" || name == "merges.txt" || ends_with(name, ".model") ||
         ends_with(name, ".tiktoken");
}

bool has(const std::vector<std::string>& siblings, const std::string& name) {
  return std::find(siblings.begin(), siblings.end(), name) != siblings.end();
}

}  // namespace

Result<std::vector<std::string>> select_initial_files(const std::string& repo, const std::vector<std::string>& siblings) {
  if (!has(siblings, "config.json")) {
    return make_error(ErrorCode::kLoadFailed,
                      "the hub repository " + repo + " has no config.json: it is not a Hugging Face model fathom can load");
  }
  const bool single = has(siblings, "model.safetensors");
  const bool sharded = has(siblings, "model.safetensors.index.json");
  if (!single && !sharded) {
    std::string found;
    for (const auto& s : siblings) {
      if (s.find('/') == std::string::npos && unsupported_weights(s)) found += (found.empty() ? "" : ", ") + s;
    }
    return make_error(ErrorCode::kUnsupported,
                      "the hub repository " + repo + " has no model.safetensors or model.safetensors.index.json" +
                          (found.empty() ? std::string()
                                         : " (it has " + found + "; fathom loads safetensors weights only, and "
                                           "pytorch_model.bin is not supported: use a revision with safetensors "
                                           "weights or convert the checkpoint)"));
  }
  std::vector<std::string> out;
  // bge-m3's FlagEmbedding heads (torch.save state dicts, read without executing them): both or neither.
  if (has(siblings, "sparse_linear.pt") && has(siblings, "colbert_linear.pt"))
    out.insert(out.end(), {"sparse_linear.pt", "colbert_linear.pt"});
  for (const auto& s : siblings) {
    if (s.find('/') != std::string::npos || unsupported_weights(s)) continue;
    if (s == "model.safetensors.index.json" && single) continue;  // model.safetensors wins, as when loading
    if (ends_with(s, ".json") || vocabulary_file(s) || s == "model.safetensors") out.push_back(s);
  }
  return out;
}

std::vector<std::string> module_files(const nlohmann::json& modules, const std::vector<std::string>& siblings) {
  std::vector<std::string> out;
  if (!modules.is_array()) return out;
  std::set<std::string> folders;
  for (const auto& m : modules) {
    if (!m.is_object()) continue;
    auto it = m.find("path");
    if (it == m.end() || !it->is_string()) continue;
    std::string path = it->get<std::string>();
    while (!path.empty() && path.back() == '/') path.pop_back();
    if (path.empty() || path.find("..") != std::string::npos || path[0] == '/') continue;
    folders.insert(path + "/");
  }
  for (const auto& s : siblings) {
    if (unsupported_weights(s)) continue;
    for (const auto& f : folders) {
      if (s.rfind(f, 0) == 0) {
        out.push_back(s);
        break;
      }
    }
  }
  return out;
}

Result<std::vector<std::string>> shard_files(const std::string& repo, const nlohmann::json& index,
                                             const std::vector<std::string>& siblings) {
  auto wm = index.is_object() ? index.find("weight_map") : index.end();
  if (!index.is_object() || wm == index.end() || !wm->is_object() || wm->empty()) {
    return make_error(ErrorCode::kLoadFailed, repo + ": model.safetensors.index.json has no weight_map");
  }
  std::set<std::string> shards;
  for (auto& [tensor, file] : wm->items()) {
    if (!file.is_string()) return make_error(ErrorCode::kLoadFailed, repo + ": weight_map['" + tensor + "'] is not a file name");
    shards.insert(file.get<std::string>());
  }
  std::vector<std::string> out;
  for (const auto& s : shards) {
    if (s.find("..") != std::string::npos || s.empty() || s[0] == '/') {
      return make_error(ErrorCode::kLoadFailed, repo + ": model.safetensors.index.json names an invalid shard '" + s + "'");
    }
    if (!has(siblings, s)) {
      return make_error(ErrorCode::kNotFound, "the hub repository " + repo + " has no shard " + s +
                                                  " (named by model.safetensors.index.json)");
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace fathom::hub
