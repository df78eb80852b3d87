#include "models/decoder/decoder_weights.h"

namespace fathom::models::decoder {

Result<std::unique_ptr<DecoderWeights>> load_decoder_weights(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                             const DecoderConfig& c, Allocator& allocator,
                                                             MemoryAccount* account, DType dtype) {
  auto w = std::make_unique<DecoderWeights>();
  w->dtype = dtype;
  w->store = std::make_unique<WeightStore>(allocator, account, dtype);
  WeightStore& s = *w->store;
  const std::string base = ckpt.find(prefix + "model.embed_tokens.weight") ? prefix + "model." : prefix;
  const int64_t h = c.hidden_size, hd = c.head_dim, qw = static_cast<int64_t>(c.num_attention_heads) * hd,
                kvw = static_cast<int64_t>(c.num_key_value_heads) * hd, inter = c.intermediate_size;
  FATHOM_ASSIGN_OR_RETURN(w->embed, s.load(ckpt, base + "embed_tokens.weight", Shape{c.vocab_size, h}));
  FATHOM_ASSIGN_OR_RETURN(w->final_norm, s.load(ckpt, base + "norm.weight", Shape{h}));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string p = base + "layers." + std::to_string(l) + ".";
    DecoderLayerWeights L;
    FATHOM_ASSIGN_OR_RETURN(L.input_norm, s.load(ckpt, p + "input_layernorm.weight", Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(L.post_norm, s.load(ckpt, p + "post_attention_layernorm.weight", Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(L.qkv, s.load_rows(ckpt, {{p + "self_attn.q_proj.weight", Shape{qw, h}},
                                                      {p + "self_attn.k_proj.weight", Shape{kvw, h}},
                                                      {p + "self_attn.v_proj.weight", Shape{kvw, h}}}));
    if (c.attention_bias) {
      FATHOM_ASSIGN_OR_RETURN(L.qkv_bias, s.load_rows(ckpt, {{p + "self_attn.q_proj.bias", Shape{qw}},
                                                             {p + "self_attn.k_proj.bias", Shape{kvw}},
                                                             {p + "self_attn.v_proj.bias", Shape{kvw}}}));
    }
    if (c.qk_norm) {
      FATHOM_ASSIGN_OR_RETURN(L.q_norm, s.load(ckpt, p + "self_attn.q_norm.weight", Shape{hd}));
      FATHOM_ASSIGN_OR_RETURN(L.k_norm, s.load(ckpt, p + "self_attn.k_norm.weight", Shape{hd}));
    }
    FATHOM_ASSIGN_OR_RETURN(L.o, s.load(ckpt, p + "self_attn.o_proj.weight", Shape{h, qw}));
    FATHOM_ASSIGN_OR_RETURN(L.gate_up, s.load_rows(ckpt, {{p + "mlp.gate_proj.weight", Shape{inter, h}},
                                                          {p + "mlp.up_proj.weight", Shape{inter, h}}}));
    FATHOM_ASSIGN_OR_RETURN(L.down, s.load(ckpt, p + "mlp.down_proj.weight", Shape{h, inter}));
    w->layers.push_back(L);
  }
  if (c.tie_word_embeddings) {
    w->lm_head = w->embed;
  } else if (ckpt.find(prefix + "lm_head.weight")) {
    FATHOM_ASSIGN_OR_RETURN(w->lm_head, s.load(ckpt, prefix + "lm_head.weight", Shape{c.vocab_size, h}));
  } else if (base == prefix + "model.") {
    return make_error(ErrorCode::kLoadFailed, ckpt.description() + ": tensor '" + prefix +
                                                  "lm_head.weight' is missing (tie_word_embeddings is false)");
  }
  return w;
}

}  // namespace fathom::models::decoder
