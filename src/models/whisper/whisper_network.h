#pragma once
// The Whisper network as a WhisperBackend: encoder over 30 s windows, decoder steps over cache slots.
//
// Encoder: conv1d(k3 s1 p1) + GELU, conv1d(k3 s2 p1) + GELU, + learned positions, pre-LN blocks
// (self-attention with q/v biases, fc1-GELU-fc2), final LayerNorm. Each encoded window's cross-attention
// keys/values ([layers][1500, d] each) are computed once and shared by every slot bound to it.
// Decoder: token + learned position embeddings, pre-LN blocks with causal self-attention over the slot's
// cache, cross-attention to its window, FFN; final LayerNorm; logits = hidden · lm_head^T (tied).
//
// Written once against ops/ (device-agnostic): every tensor lives in memory of the model's allocator.
// Slot caches are allocated when a slot is first used and kept; window entries are freed when no slot
// refers to them. encode() and decode() never throw (failures are errors for the jobs concerned).
// Not thread-safe: the device worker is the only caller.
#include <map>
#include <memory>
#include <vector>

#include "models/whisper/backend.h"
#include "models/whisper/config.h"
#include "models/whisper/whisper_weights.h"
#include "runtime/exec_context.h"

namespace fathom::models::whisper {

class WhisperNetwork final : public WhisperBackend {
 public:
  // `ctx` (device, allocator, account, workspace) must outlive the network. `slots`: decoder cache slots.
  WhisperNetwork(const WhisperConfig& config, std::unique_ptr<WhisperWeights> weights, ExecContext& ctx, int slots);

  int vocab_size() const override { return cfg_.vocab_size; }
  int num_mel_bins() const override { return cfg_.num_mel_bins; }
  int max_target_positions() const override { return cfg_.max_target_positions; }
  int free_slots() const override;
  Result<std::vector<int>> acquire_slots(int n) override;
  void release_slots(const std::vector<int>& slots) override;
  Status encode(const std::vector<std::span<const float>>& windows,
                const std::vector<std::vector<int>>& slots) override;
  Result<std::vector<float>> decode(const std::vector<DecodeRow>& rows) override;

  // The encoder alone: windows [B, n_mels, 3000] -> hidden states [B, 1500, d] (after the final norm),
  // host copies. For tests.
  Result<std::vector<float>> encoder_states(const std::vector<std::span<const float>>& windows);
  const WhisperConfig& config() const { return cfg_; }
  std::size_t weight_bytes() const { return w_->bytes; }

 private:
  struct Slot {
    bool in_use = false;
    Buffer cache;    // [layers][2][max_target_positions, d] self-attention keys / values
    int length = 0;  // valid cache positions
    int window = -1; // bound window entry
  };
  struct Window {
    Buffer kv;       // [layers][2][frames, d] cross-attention keys / values
    int refs = 0;
  };

  // encode() / decode() without the exception guard (they turn any exception into an error).
  Status encode_impl(const std::vector<std::span<const float>>& windows, const std::vector<std::vector<int>>& slots);
  Result<std::vector<float>> decode_impl(const std::vector<DecodeRow>& rows);
  Result<Buffer> alloc(std::size_t floats);
  TensorView self_kv(int slot, int layer, int which, int rows);  // which: 0 = keys, 1 = values
  TensorView cross_kv(int window, int layer, int which);
  void unbind(int slot);
  void bind(int slot, int window);
  // Runs the encoder; `out` receives [B * frames, d].
  Result<Buffer> run_encoder(const std::vector<std::span<const float>>& windows);

  WhisperConfig cfg_;
  std::unique_ptr<WhisperWeights> w_;
  ExecContext& ctx_;
  int head_dim_;
  int enc_frames_;  // encoder positions per window (max_source_positions)
  std::vector<Slot> slots_;
  std::map<int, Window> windows_;
  int next_window_ = 0;
};

}  // namespace fathom::models::whisper
