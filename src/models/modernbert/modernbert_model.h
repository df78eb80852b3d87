#pragma once
// ModernBERT (ModernBertModel, ModernBertForMaskedLM; config model_type "modernbert") as an embedding model
// on the shared encoder runtime (models/encoder).
//
// Network: token embeddings, LayerNorm, pre-norm layers x + Wo(attn(attn_norm(x))) (layer 0 has no
// attn_norm), x + mlp(mlp_norm(x)) with the GeGLU mlp Wo(act(input) * gate), input | gate = Wi(x), then
// final_norm. Attention alternates global layers and local ones that see only keys within
// local_attention / 2 positions; each kind has its own rotary theta. Biases per attention_bias, mlp_bias,
// norm_bias. Both config.json layouts are read:
//   layer_types ["full_attention" | "sliding_attention", ...] + rope_parameters {full_attention: {rope_theta},
//   sliding_attention: {rope_theta}} (transformers 5), or
//   global_attn_every_n_layers (layer i global when i % n == 0) + global_rope_theta + local_rope_theta.
// Tensor prefix "" or "model.".
//
// ModernBertForSequenceClassification (rerankers such as gte-reranker-modernbert-base, labelled
// classifiers) adds transformers' head on the final-normed hidden states: classifier_pooling "cls" (first
// token) or "mean", head.dense [H, H] (bias per classifier_bias) -> classifier_activation (gelu family) ->
// head.norm (LayerNorm, norm_eps, bias per norm_bias) -> classifier [L, H] + bias, at the checkpoint's root.
// Labels and score activation from id2label / sentence_transformers (models/classifier_labels.h). Other
// classifier_pooling / classifier_activation values are kUnsupported, naming config.json and the key.
#include "models/encoder/encoder_family.h"

namespace fathom::models::modernbert {

// The family on the shared encoder runtime: load with encoder::load_encoder_family, position limit with
// encoder::encoder_position_limit.
encoder::EncoderFamily modernbert_family();
// ModernBertForSequenceClassification on the same runtime (a Classifier: score + classify, classify only
// with several labels).
encoder::EncoderFamily modernbert_classifier_family();

}  // namespace fathom::models::modernbert
