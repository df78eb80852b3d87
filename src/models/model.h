#pragma once
// What a loaded model is and what it can do.
//
// Static facts about an architecture (ModelInfo) are known without loading weights; they drive
// `fathom models`, `fathom inspect`, the startup table and which HTTP routes exist. Capabilities are C++
// interfaces reached through accessors (as_embedder(), ...): a model that declares a task in its
// ModelInfo must return a non-null interface for it (checked at load by the registry).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "runtime/device.h"

namespace fathom::formats {
class Tokenizer;
}

namespace fathom::models {

// Tasks a model can serve. Each maps to OpenAI-style endpoints (see task_endpoints()).
enum class Task { kEmbed, kTranscribe, kTranslate, kScore, kClassify };

const char* task_name(Task task);  // "embed", "transcribe", ...
// The HTTP endpoints that serve `task`, e.g. {"/v1/embeddings"}.
std::vector<std::string> task_endpoints(Task task);

// Devices live in the runtime layer; these names stay usable here.
using fathom::Device;
using fathom::DeviceKind;

// Static description of an architecture.
struct ModelInfo {
  std::string name;                              // fathom's name for the family, e.g. "bert"
  std::vector<std::string> hf_architectures;     // config.json `architectures[0]` values matched
  std::vector<std::string> model_types;          // config.json `model_type` values matched (fallback)
  std::vector<Task> tasks;                       // what it serves
  std::vector<DeviceKind> devices;               // where it runs
  std::vector<DType> compute_dtypes;             // dtypes it computes in
  bool cuda_graphs = false;                      // whole forward capturable in a CUDA graph
  std::string source = "built-in";               // "built-in" or the plugin's path
};

// Embedding (pooling) capability.
class Embedder {
 public:
  virtual ~Embedder() = default;
  virtual const formats::Tokenizer& tokenizer() const = 0;
  // Longest input accepted, in tokens including special tokens.
  virtual int max_input_tokens() const = 0;
  virtual int embedding_dim() const = 0;
  // Matryoshka dimensions the model declares (config.json `matryoshka_dimensions` / `is_matryoshka`);
  // empty when it does not support `dimensions`. When `is_matryoshka` is set without a list, every
  // size from 1 to embedding_dim() is allowed and this holds {embedding_dim()}.
  virtual bool supports_matryoshka() const = 0;
  virtual std::vector<int> matryoshka_dimensions() const = 0;
  // Whether the model's own configuration L2-normalises its output (sentence-transformers Normalize).
  virtual bool normalizes_by_default() const = 0;
  // Runs encoder + pooling on a batch of token-id sequences (each already tokenized with special tokens,
  // each 1..max_input_tokens() long). Returns sequences.size() * embedding_dim() floats, row-major,
  // pooled but NOT normalised. Called from one thread at a time (the device worker).
  virtual Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) = 0;
};

// A loaded model.
class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  virtual std::string architecture() const = 0;  // the matched config.json architecture
  virtual DType dtype() const = 0;               // compute dtype
  virtual Device device() const = 0;
  virtual std::size_t memory_bytes() const = 0;  // weights + persistent workspaces
  virtual Embedder* as_embedder() { return nullptr; }
};

}  // namespace fathom::models
