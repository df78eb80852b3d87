#pragma once
// The Whisper network as a WhisperBackend: encoder over 30 s windows, decoder steps over cache slots.
//
// Encoder: conv1d(k3 s1 p1) + GELU, conv1d(k3 s2 p1) + GELU, + learned positions, pre-LN blocks
// (self-attention with q/v biases, fc1-GELU-fc2), final LayerNorm. Each encoded window's cross-attention
// keys/values ([layers][1500, 2d], row = k | v) are computed once and shared by every slot bound to it.
// Decoder: token + learned position embeddings, pre-LN blocks with causal self-attention over the slot's
// cache, cross-attention to its window, FFN; final LayerNorm; logits = hidden · lm_head^T (tied).
//
// Written once against ops/ (device-agnostic): weights, caches and activations live in memory of the
// model's allocator in the weights' compute dtype (f32 on CPU; f32, f16 or bf16 on CUDA); logits come
// back to the host as f32. All device work is queued on the runner's stream: one upload of the step's
// inputs (token ids, positions, cache row addresses), the layers, one download of the logits, one
// synchronisation per decode() call. Activations live in a grow-only arena, so steady-state steps
// allocate nothing. On CUDA the 30 s log-mel can be computed on the device (encode_audio).
//
// Slot caches ([layers][max_target_positions, 2d], row = k | v) are allocated when a slot is first used
// and kept; window entries are freed when no slot refers to them. encode() and decode() never throw
// (failures are errors for the jobs concerned). Not thread-safe: the device worker is the only caller.
#include <map>
#include <memory>
#include <vector>

#include "models/whisper/backend.h"
#include "models/whisper/config.h"
#include "models/whisper/whisper_weights.h"
#include "ops/device_runner.h"
#include "runtime/exec_context.h"

namespace fathom::models::whisper {

class WhisperNetwork final : public WhisperBackend {
 public:
  // `ctx` (device, stream, allocator, account, workspace) and `runner` (the stream's staging) must outlive
  // the network; ctx.stream must be runner.stream(). `slots`: decoder cache slots.
  // `cuda_graphs`: replay decode steps from CUDA graphs per batch bucket where the runner supports graphs.
  WhisperNetwork(const WhisperConfig& config, std::unique_ptr<WhisperWeights> weights, ExecContext& ctx,
                 ops::DeviceRunner& runner, int slots, bool cuda_graphs = false);
  ~WhisperNetwork() override;

  int vocab_size() const override { return cfg_.vocab_size; }
  int num_mel_bins() const override { return cfg_.num_mel_bins; }
  int max_target_positions() const override { return cfg_.max_target_positions; }
  int free_slots() const override;
  Result<std::vector<int>> acquire_slots(int n) override;
  void release_slots(const std::vector<int>& slots) override;
  Status encode(const std::vector<std::span<const float>>& windows,
                const std::vector<std::vector<int>>& slots) override;
  bool computes_log_mel() const override { return !mel_filters_.empty(); }
  Status encode_audio(const std::vector<std::span<const float>>& samples,
                      const std::vector<std::vector<int>>& slots) override;
  Result<std::span<float>> decode(const std::vector<DecodeRow>& rows) override;

  // The encoder alone: windows [B, n_mels, 3000] -> hidden states [B, 1500, d] (after the final norm),
  // host f32 copies. For tests.
  Result<std::vector<float>> encoder_states(const std::vector<std::span<const float>>& windows);
  // The device log-mel of one 30 s window (samples padded with zeros to 480000) as host f32
  // [n_mels, 3000]; kUnsupported unless computes_log_mel(). For tests.
  Result<std::vector<float>> device_log_mel(std::span<const float> samples);
  const WhisperConfig& config() const { return cfg_; }
  std::size_t weight_bytes() const { return w_->bytes; }
  DType dtype() const { return w_->dtype; }
  int slot_count() const { return static_cast<int>(slots_.size()); }
  // Bytes of one slot's self-attention cache and of one encoded window's cross keys/values.
  std::size_t slot_cache_bytes() const;
  std::size_t window_bytes() const;
  // Whether decode steps replay CUDA graphs, and the batch buckets (rows padded up to one of them).
  bool uses_graphs() const { return graphs_; }
  const std::vector<int>& step_buckets() const { return buckets_; }
  std::size_t graph_count() const { return runner_.graph_count(); }

 private:
  struct Slot {
    bool in_use = false;
    Buffer cache;    // [layers][max_target_positions, 2d] self-attention key | value rows
    int length = 0;  // valid cache positions
    int window = -1; // bound window entry
  };
  struct Window {
    Buffer kv;       // [layers][frames, 2d] cross-attention key | value rows
    int refs = 0;
  };
  enum class Input { kMel, kAudio };

  Status encode_impl(Input kind, const std::vector<std::span<const float>>& inputs,
                     const std::vector<std::vector<int>>& slots);
  Result<std::span<float>> decode_impl(const std::vector<DecodeRow>& rows);
  // The single-token step (every row feeds exactly one new token): rows padded to a bucket (on CUDA), every
  // per-step input in one persistent device buffer refreshed by one upload, then the decoder body eagerly
  // or as a CUDA graph replay. Rows were validated and cache copies queued by decode_impl.
  Result<std::span<float>> decode_step(const std::vector<DecodeRow>& rows);
  // Byte layout of the step inputs for bucket B (ids, positions, cache row addresses, attention descriptors).
  struct StepLayout {
    std::size_t ids = 0, positions = 0, addresses = 0, self_seqs = 0, cross_seqs = 0, bytes = 0;
  };
  StepLayout step_layout(int bucket) const;
  // Activation bytes of a step of `bucket` rows (scratch of both attentions included).
  std::size_t step_activation_bytes(int bucket) const;
  Status ensure_step_buffers();
  // Enqueues the decoder over bucket rows whose inputs are in step_in_ (layout step_layout(bucket)); logits
  // f32 [bucket, V] end at logits32_offset of step_act_. Capturable.
  Status step_body(int bucket);

  // Uploads (and for kAudio computes) the f32 mel windows [B, n_mels, 3000] at the start of the arena;
  // returns the arena offset where free space starts.
  Result<TensorView> stage_mel(Input kind, const std::vector<std::span<const float>>& inputs, std::size_t* used);
  // Runs the encoder on `mel` (f32 [B, n_mels, 3000] on the device, inside the arena before `used`);
  // returns [B * frames, d] in the compute dtype, inside the arena.
  Result<TensorView> run_encoder(const TensorView& mel, std::size_t used);
  // Arena bytes an encode of `windows` windows needs (staged mel, samples when `audio`, activations).
  std::size_t encoder_arena_bytes(int windows, bool audio) const;
  // Slot `slot`'s keys (which = 0) or values (which = 1) of `layer`, first `rows` positions: [rows, 2d]
  // views whose first d columns are the keys / values.
  TensorView self_kv(int slot, int layer, int which, int rows) const;
  TensorView cross_kv(int window, int layer, int which) const;
  void unbind(int slot);
  void bind(int slot, int window);
  Result<Buffer> alloc(std::size_t bytes);

  WhisperConfig cfg_;
  std::unique_ptr<WhisperWeights> w_;
  ExecContext& ctx_;
  ops::DeviceRunner& runner_;
  DType dt_;
  std::size_t es_;  // bytes per element of dt_
  int head_dim_;
  int enc_frames_;  // encoder positions per window (max_source_positions)
  std::vector<Slot> slots_;
  std::map<int, Window> windows_;
  int next_window_ = 0;
  Workspace arena_;     // activations of one call
  bool graphs_ = false;
  std::vector<int> buckets_;  // step batch buckets (CUDA: powers of two up to >= slots; CPU: none, no padding)
  Buffer step_in_;      // step inputs, layout step_layout(bucket), sized for the largest bucket
  Buffer step_act_;     // step activations, sized for the largest bucket
  Buffer pad_rows_;     // [largest bucket, 2d]: cache rows written by padding rows (never read)
  Buffer mel_filters_;  // f32 [n_mels, 201] on the device (CUDA only)
  // Host scratch reused by every step.
  std::vector<int32_t> ids_, positions_, last_;
  std::vector<int64_t> addresses_;
  std::vector<TensorView> keys_, values_;
};

}  // namespace fathom::models::whisper
