#pragma once
// The forward pass of an EncoderSpec network over a packed batch, enqueued on ctx.stream with no
// allocation, synchronisation or host read (capturable in a CUDA graph when the batch carries a device
// description), and the activation memory it works in.
#include "models/encoder/encoder_spec.h"
#include "ops/pooling.h"
#include "ops/varlen.h"

namespace fathom::models::encoder {

// Views of one pass's activations: [t] packed rows, [batch] pooled rows.
struct Activations {
  TensorView hidden;   // [t, H]
  TensorView normed;   // [t, H] (pre-norm only)
  TensorView qkv;      // [t, 3H]
  TensorView attn;     // [t, H]
  TensorView proj;     // [t, H]
  TensorView mid;      // [t, I] or [t, 2I] (gated)
  TensorView gate;     // [t, I] (gated only)
  TensorView pooled;   // [batch, H], compute dtype
  TensorView pooled32; // [batch, H], f32
  TensorView head_mid; // [batch, H] (classifier only)
  TensorView logits;   // [batch, L], compute dtype (classifier only)
  TensorView logits32; // [batch, L], f32 (classifier only)
};

// Bytes of activations for t tokens and `batch` sequences (64-byte aligned pieces).
std::size_t activation_bytes(const EncoderSpec& spec, DType dtype, int64_t t, int64_t batch);
Activations carve_activations(const EncoderSpec& spec, DType dtype, Device device, void* arena, int64_t t, int64_t batch);

// Checks that `weights` fill `spec` (tables, one LayerWeights per LayerSpec, rope tables, bias table,
// the classifier head's dense, norm and out with its bias).
Status check_network(const EncoderSpec& spec, const EncoderWeights& weights);

// embeddings (+ norm) -> every layer -> (final norm) -> pooling into a.pooled -> (spec.classifier) the head
// into a.logits. ids / pos: int32 [t] (plain token ids).
Status encoder_forward(ExecContext& ctx, const EncoderSpec& spec, const EncoderWeights& w, const Activations& a,
                       const TensorView& ids, const TensorView& pos, const ops::VarlenBatch& vb,
                       ops::PoolingMode pooling);

}  // namespace fathom::models::encoder
