#pragma once
// The decoder-LLM core: a Qwen2 / Qwen3 causal LM (config.h, decoder_weights.h) with a paged KV cache
// (kv_cache.h), written once against ops/ for CPU and CUDA.
//
// A forward pass takes a batch of sequences, each appending one or more new positions to its cache: a
// prompt (prefill) or the last sampled token (decode step), in any mix, packed without padding into one
// [T, hidden] activation matrix. A sequence's new positions are given as spans of token ids and/or spans of
// precomputed input embeddings (host f32 [n, hidden]: e.g. audio frames spliced at a placeholder), in order.
// Layers: RMSNorm -> fused q|k|v projection (+ Qwen2 biases) -> per-head q/k RMSNorm (Qwen3) and rotary
// positions -> new keys/values written to the sequence's cache blocks -> causal grouped-query attention over
// the cache -> o_proj + residual -> RMSNorm -> fused gate|up -> SwiGLU -> down + residual; final RMSNorm.
// The pass returns, per sequence, the logits of its last new position (host f32 [B, vocab]) and optionally
// the final-normed hidden state of that position (host f32 [B, hidden]; last-token pooling).
//
// Device work: one upload of the batch description (ids, positions, cache slots, attention descriptors,
// block tables, embedding rows), the layers on the runner's stream, one download, one synchronisation per
// forward(). On CUDA (DecoderLoadOptions::cuda_graphs) a pass of one token id per sequence, up to
// max_graph_batch sequences, is a decode step: its rows are padded to a power-of-two bucket (padding rows write
// no cache slot and attend to nothing), its inputs uploaded into one persistent buffer, and the bucket's graph
// is replayed (captured on first use). Activations live in a grow-only arena charged to the model's account,
// as do the weights, the graph buffer and
// the KV cache pool, so memory_bytes() is the model's whole footprint and a budget is enforced at load
// (the cache takes a fixed byte budget of its own, DecoderLoadOptions::kv_cache_bytes).
//
// Not thread-safe: one thread (the device worker) calls everything.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/safetensors.h"
#include "models/decoder/config.h"
#include "models/decoder/decoder_weights.h"
#include "models/decoder/kv_cache.h"
#include "ops/device_runner.h"
#include "ops/qkv_layout.h"
#include "ops/varlen.h"
#include "runtime/exec_context.h"

namespace fathom::models::decoder {

struct DecoderLoadOptions {
  Device device;                         // cpu or cuda:N
  DType dtype = DType::kF32;             // compute dtype (f32 on CPU; f32, f16 or bf16 on CUDA)
  std::size_t kv_cache_bytes = 64 << 20; // the paged cache's pool (floor(bytes / block bytes) blocks)
  int kv_block_size = 16;                // positions per cache block
  std::size_t memory_budget = 0;         // the model's account budget (weights + cache + activations); 0 = none
  ops::RunnerOptions runner;             // stream priority / concurrency / SM partition (CUDA)
  // CUDA: replay decode steps (every input one token id) from CUDA graphs, one per batch bucket (powers of
  // two up to max_graph_batch; rows padded to the bucket). Prefills and larger batches run eagerly.
  bool cuda_graphs = true;
  int max_graph_batch = 64;
};

// A run of new positions of one sequence: token ids, or input embeddings (host f32, row-major [n, hidden]).
// Exactly one of the two is non-empty. The memory must stay valid during forward().
struct InputSpan {
  std::span<const int32_t> ids;
  std::span<const float> embeddings;
  static InputSpan tokens(std::span<const int32_t> ids) { return InputSpan{ids, {}}; }
  static InputSpan embeds(std::span<const float> rows) { return InputSpan{{}, rows}; }
};

// One sequence's part of a forward pass: the cache sequence (DecoderLm::add_sequence) and its new positions,
// which follow the positions already cached.
struct SequenceInput {
  int sequence = -1;
  std::vector<InputSpan> spans;
};

struct ForwardOptions {
  bool logits = true;        // compute lm_head logits of each sequence's last new position
  bool last_hidden = false;  // also return the final-normed hidden state of that position
  bool greedy_ids = false;   // return each sequence's argmax token (computed on the device; with logits
                             // = false only B ids leave it, not [B, vocab] logits)
};

// Host results of a forward pass, valid until the next forward(): row b belongs to inputs[b].
struct ForwardOutput {
  std::span<const float> logits;       // [B, vocab] when requested
  std::span<const float> last_hidden;  // [B, hidden] when requested
  std::span<const int32_t> greedy_ids; // [B] when requested: argmax of each row's logits, first on ties
};

class DecoderLm {
 public:
  // Builds the model from `config` and the checkpoint tensors under `prefix` ("" for a Hugging Face
  // directory, e.g. "llm." when the decoder sits inside a larger checkpoint).
  static Result<std::unique_ptr<DecoderLm>> load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                 const DecoderConfig& config, const DecoderLoadOptions& options);
  // A Hugging Face directory: config.json, generation_config.json (eos ids), model.safetensors (sharded ok).
  static Result<std::unique_ptr<DecoderLm>> load_directory(const std::filesystem::path& dir,
                                                           const DecoderLoadOptions& options);
  ~DecoderLm();
  DecoderLm(const DecoderLm&) = delete;
  DecoderLm& operator=(const DecoderLm&) = delete;

  const DecoderConfig& config() const { return cfg_; }
  DType dtype() const { return w_->dtype; }
  const Device& device() const { return ctx_.device; }
  int hidden_size() const { return cfg_.hidden_size; }
  int vocab_size() const { return cfg_.vocab_size; }
  bool has_lm_head() const { return w_->lm_head.data != nullptr; }
  MemoryAccount& account() { return account_; }
  std::size_t memory_bytes() const { return account_.in_use(); }
  std::size_t weight_bytes() const { return w_->bytes(); }

  // Cache sequences. add_sequence() never fails (blocks are taken by forward()); release_sequence() frees
  // the sequence's blocks.
  PagedKvCache& cache() { return cache_; }
  const PagedKvCache& cache() const { return cache_; }
  int add_sequence() { return cache_.add_sequence(); }
  void release_sequence(int sequence) { cache_.release(sequence); }
  // Blocks a forward pass appending `new_positions` to `sequence` would take from the free pool.
  int blocks_needed(int sequence, int64_t new_positions) const;

  // One forward pass over `inputs` (distinct live sequences, each with >= 1 new position). On success every
  // sequence's cache length grows by its new positions. Errors: kInvalidArgument (unknown or repeated
  // sequence, empty input, id outside the vocabulary, embeddings not a multiple of hidden_size, more than
  // max_position_embeddings positions), kOutOfMemory (cache blocks or arena over budget; no sequence changes),
  // kUnsupported (logits without an lm_head). Never throws.
  Result<ForwardOutput> forward(const std::vector<SequenceInput>& inputs, const ForwardOptions& options = {});

  // Host f32 copies of the token embeddings of `ids` ([n, hidden]), e.g. to build a prompt's embeddings.
  Result<std::vector<float>> token_embeddings(std::span<const int32_t> ids);

  // Whether decode steps replay CUDA graphs, their batch buckets, and the graphs captured so far.
  bool uses_graphs() const { return !buckets_.empty(); }
  const std::vector<int>& graph_buckets() const { return buckets_; }
  std::size_t graph_count() const { return runner_->graph_count(); }

 private:
  DecoderLm(DecoderConfig config, Device device, Allocator& allocator);
  Result<ForwardOutput> forward_impl(const std::vector<SequenceInput>& inputs, const ForwardOptions& options);
  // Byte offsets of one pass's inputs and activations inside one device buffer (decoder_lm.cpp).
  struct Layout;
  // varlen_ints: ints of the CUDA batch description a fresh prefill uploads with its inputs (0 for none).
  Layout layout_for(int64_t rows, int64_t seqs, int64_t table_entries, int64_t embedding_rows,
                    std::size_t varlen_ints = 0) const;
  // Whether the fresh sequences of a pass (nothing cached) can take the causal varlen attention instead of the
  // paged one: every CPU pass, CUDA when head_dim <= 128.
  bool causal_prefill_supported() const;
  // Enqueues the network over a pass whose inputs sit at `base` (layout L): embeddings, layers, last-row
  // gather, final norm and, when `logits`, the f32 logits at L.logits32 (or L.logits for f32). Capturable when
  // embedding_rows == 0. `fresh` (null: none) describes the pass's fresh sequences (nothing cached before it),
  // packed first: rows [0, fresh->total()) and the first fresh->batch() descriptors. They attend over their own
  // new rows (ops::attention_varlen_causal; the rows are still written to the cache), the others over the paged
  // cache; max_q_len bounds the latter's new rows.
  Status body(unsigned char* base, const Layout& L, int64_t rows, int64_t seqs, int max_q_len, int64_t table_entries,
              int64_t embedding_rows, bool logits, const ops::VarlenBatch* fresh);

  DecoderConfig cfg_;
  ops::QkvLayout layout_;
  float attn_scale_ = 1.0f;
  float rope_scaling_ = 1.0f;
  MemoryAccount account_;
  Workspace workspace_;  // op scratch
  Workspace arena_;      // inputs and activations of one forward pass
  ExecContext ctx_;
  std::unique_ptr<ops::DeviceRunner> runner_;
  std::unique_ptr<DecoderWeights> w_;
  Buffer inv_freq_;  // f32 [head_dim / 2] on the device
  PagedKvCache cache_;
  std::vector<float> logits_host_, hidden_host_;
  std::vector<int32_t> greedy_host_;
  std::vector<int> buckets_;  // decode-step graph buckets (empty: graphs off)
  int graph_table_width_ = 0; // block-table entries per sequence in graph steps
  Buffer graph_buffer_;       // inputs + activations of graph steps, sized for the largest bucket
};

}  // namespace fathom::models::decoder
