#include "models/decoder/decoder_embedder.h"

#include <algorithm>
#include <cstring>

#include "formats/safetensors.h"
#include "formats/sentence_transformers.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/decoder/config.h"
#include "models/decoder/decoder_lm.h"
#include "models/input_checks.h"
#include "models/matryoshka.h"
#include "ops/common.h"

namespace fathom::models::decoder {
namespace {

constexpr int kCpuCachePositions = 4096;    // KV cache positions of one pass on CPU (texts beyond run in later passes)
constexpr int kCudaCachePositions = 16384;  // and on CUDA

// Everything load and inspect read without weights: the decoder's config and the sentence-transformers files,
// with the refusal of causal LMs that carry no pooling.
struct EmbedderParts {
  std::string architecture;
  DecoderConfig decoder;
  formats::SentenceTransformersConfig st;
  MatryoshkaDims matryoshka;
};

Result<EmbedderParts> resolve_parts(const std::filesystem::path& dir, const nlohmann::json& config) {
  EmbedderParts p;
  p.architecture = config_architecture(config, "qwen3");
  FATHOM_ASSIGN_OR_RETURN(p.decoder, parse_decoder_config(config, dir / "config.json"));
  FATHOM_ASSIGN_OR_RETURN(p.st, formats::read_sentence_transformers_config(dir));
  FATHOM_ASSIGN_OR_RETURN(p.matryoshka, parse_matryoshka(config, dir / "config.json", p.decoder.hidden_size));
  if (!p.st.has_pooling)
    return make_error(ErrorCode::kUnsupported,
                      dir.string() + ": " + p.architecture +
                          " is a decoder LLM without sentence-transformers pooling (no Pooling module in " +
                          (dir / "modules.json").string() +
                          "); fathom serves such a model as an embedding model only with last-token pooling declared, "
                          "as Qwen3-Embedding ships it (modules.json + 1_Pooling/config.json with "
                          "pooling_mode_lasttoken), and does not serve chat or completions");
  if (p.st.pooling != formats::PoolingKind::kLastToken)
    return make_error(ErrorCode::kUnsupported, p.st.pooling_source + ": pooling '" +
                                                   formats::pooling_kind_name(p.st.pooling) +
                                                   "' is not supported for decoder embedding models (supported: lasttoken)");
  if (p.st.pooling_dimension && *p.st.pooling_dimension != p.decoder.hidden_size)
    return make_error(ErrorCode::kLoadFailed, p.st.pooling_source + ": embedding dimension " +
                                                  std::to_string(*p.st.pooling_dimension) + " differs from the hidden size " +
                                                  std::to_string(p.decoder.hidden_size) + " of " +
                                                  (dir / "config.json").string());
  return p;
}

class DecoderEmbedder final : public Model, public Embedder {
 public:
  DecoderEmbedder(ModelInfo info, EmbedderParts parts, std::shared_ptr<const formats::Tokenizer> tokenizer,
                  std::unique_ptr<DecoderLm> lm, int max_tokens, int max_batch_tokens)
      : info_(std::move(info)), parts_(std::move(parts)), tokenizer_(std::move(tokenizer)), lm_(std::move(lm)),
        max_tokens_(max_tokens), max_batch_tokens_(std::max(max_batch_tokens, max_tokens)) {}

  // Model
  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return parts_.architecture; }
  DType dtype() const override { return lm_->dtype(); }
  Device device() const override { return lm_->device(); }
  std::size_t memory_bytes() const override { return lm_->memory_bytes(); }
  Embedder* as_embedder() override { return this; }

  // Embedder
  const formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int max_input_tokens() const override { return max_tokens_; }
  int embedding_dim() const override { return lm_->hidden_size(); }
  bool supports_matryoshka() const override { return parts_.matryoshka.supported(); }
  std::vector<int> matryoshka_dimensions() const override { return parts_.matryoshka.list(lm_->hidden_size()); }
  bool normalizes_by_default() const override { return parts_.st.normalize; }
  std::vector<std::pair<std::string, std::string>> prompts() const override { return parts_.st.prompts; }
  std::string default_prompt_name() const override { return parts_.st.default_prompt_name; }
  Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) override;

 private:
  // One prefill over sequences[first, first + count): the last positions' hidden states into `out`.
  Status run_pass(const std::vector<std::vector<int32_t>>& sequences, std::size_t first, std::size_t count, float* out);

  ModelInfo info_;
  EmbedderParts parts_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  std::unique_ptr<DecoderLm> lm_;
  int max_tokens_ = 0;
  int max_batch_tokens_ = 0;
};

Result<std::vector<float>> DecoderEmbedder::embed(const std::vector<std::vector<int32_t>>& sequences) {
  FATHOM_TRY(check_token_sequences(sequences, max_tokens_, lm_->vocab_size()));
  const std::size_t hidden = static_cast<std::size_t>(lm_->hidden_size());
  std::vector<float> out(sequences.size() * hidden);
  // Passes of consecutive texts, each as many as the cache's free blocks and the token budget hold.
  const PagedKvCache& cache = lm_->cache();
  for (std::size_t first = 0; first < sequences.size();) {
    int free = cache.free_blocks();
    int64_t tokens = 0;
    std::size_t count = 0;
    while (first + count < sequences.size()) {
      const auto& seq = sequences[first + count];
      const int need = cache.blocks_for(static_cast<int64_t>(seq.size()));
      if (count > 0 && (need > free || tokens + static_cast<int64_t>(seq.size()) > max_batch_tokens_)) break;
      free -= need;
      tokens += static_cast<int64_t>(seq.size());
      ++count;
    }
    FATHOM_TRY(run_pass(sequences, first, count, out.data() + first * hidden));
    first += count;
  }
  return out;
}

Status DecoderEmbedder::run_pass(const std::vector<std::vector<int32_t>>& sequences, std::size_t first,
                                 std::size_t count, float* out) {
  std::vector<SequenceInput> inputs(count);
  for (std::size_t i = 0; i < count; ++i) {
    inputs[i].sequence = lm_->add_sequence();
    inputs[i].spans.push_back(InputSpan::tokens(sequences[first + i]));
  }
  ForwardOptions fo;
  fo.logits = false;
  fo.last_hidden = true;
  auto result = lm_->forward(inputs, fo);
  for (const auto& in : inputs) lm_->release_sequence(in.sequence);
  if (!result.ok()) return result.error();
  const auto& hidden = result.value().last_hidden;
  std::memcpy(out, hidden.data(), hidden.size() * sizeof(float));
  return Status::Ok();
}

}  // namespace

ModelInfo decoder_embedder_model_info() {
  ModelInfo info;
  info.name = "qwen3-embedding";
  info.hf_architectures = {"Qwen3Model", "Qwen3ForCausalLM"};
  info.tasks = {Task::kEmbed};
  set_build_devices(info, /*cuda_graphs=*/false);
  return info;
}

Result<std::unique_ptr<Model>> load_decoder_embedder(const std::filesystem::path& dir, const nlohmann::json& config,
                                                     const LoadOptions& options, const ModelInfo& info) {
  FATHOM_ASSIGN_OR_RETURN(EmbedderParts parts, resolve_parts(dir, config));
  const DType dtype = resolve_compute_dtype(config, options);
  FATHOM_TRY(prepare_compute(dir, info.name, dtype, options.device));
  FATHOM_ASSIGN_OR_RETURN(auto tok_max, formats::read_tokenizer_max_length(dir));
  const int max_tokens =
      formats::resolve_max_input_tokens(parts.st.max_seq_length, tok_max, parts.decoder.max_position_embeddings);
  FATHOM_ASSIGN_OR_RETURN(std::shared_ptr<const formats::Tokenizer> tokenizer,
                          formats::Tokenizer::load(dir / "tokenizer.json"));

  // The cache holds one pass: at least the longest input, at most the token budget (capped per device).
  const DecoderConfig& c = parts.decoder;
  DecoderLoadOptions lo;
  lo.device = options.device;
  lo.dtype = dtype;
  lo.cuda_graphs = false;  // prefills only: the decoder's graphs cover decode steps
  lo.runner = runner_options(options);
  lo.memory_budget = options.memory_budget;
  const int cap = options.device.kind == DeviceKind::kCuda ? kCudaCachePositions : kCpuCachePositions;
  const int64_t positions = std::max<int64_t>(max_tokens, std::min(options.max_batch_tokens, cap)) + 2 * lo.kv_block_size;
  const std::size_t position_bytes = static_cast<std::size_t>(c.num_hidden_layers) * c.num_key_value_heads * c.head_dim *
                                     2 * dtype_size(dtype);
  lo.kv_cache_bytes = static_cast<std::size_t>(positions) * position_bytes;
  FATHOM_ASSIGN_OR_RETURN(formats::Checkpoint ckpt, formats::Checkpoint::open(dir));
  FATHOM_ASSIGN_OR_RETURN(std::unique_ptr<DecoderLm> lm, DecoderLm::load(ckpt, "", c, lo));
  const int max_batch = static_cast<int>(std::min<int64_t>(options.max_batch_tokens, positions));
  return std::unique_ptr<Model>(
      new DecoderEmbedder(info, std::move(parts), std::move(tokenizer), std::move(lm), max_tokens, max_batch));
}

Result<std::vector<std::pair<std::string, std::string>>> inspect_decoder_embedder(const std::filesystem::path& dir,
                                                                                  const nlohmann::json& config) {
  FATHOM_ASSIGN_OR_RETURN(EmbedderParts p, resolve_parts(dir, config));
  const auto str = [](auto v) { return std::to_string(v); };
  const DecoderConfig& c = p.decoder;
  std::vector<std::pair<std::string, std::string>> rows;
  rows.emplace_back("decoder", p.architecture + ": " + str(c.num_hidden_layers) + " layers, hidden " + str(c.hidden_size) +
                                   ", " + str(c.num_attention_heads) + "/" + str(c.num_key_value_heads) + " heads of " +
                                   str(c.head_dim) + ", vocab " + str(c.vocab_size));
  std::string prompts;
  for (const auto& [name, text] : p.st.prompts)
    prompts += (prompts.empty() ? "" : "; ") + name + " = " + nlohmann::json(text).dump();
  rows.emplace_back("prompts", prompts.empty() ? "none declared" : prompts + " (request field prompt_name)");
  return rows;
}

}  // namespace fathom::models::decoder
