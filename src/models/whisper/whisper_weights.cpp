#include "models/whisper/whisper_weights.h"

#include <cstring>

#include "formats/safetensors.h"
#include "ops/convert.h"
#include "runtime/exec_context.h"

namespace fathom::models::whisper {
namespace {

std::string shape_of(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

class Loader {
 public:
  Loader(const formats::Checkpoint& ckpt, std::string prefix, Allocator& allocator, MemoryAccount* account,
         WhisperWeights& out)
      : ckpt_(ckpt), prefix_(std::move(prefix)), allocator_(allocator), account_(account), out_(out) {}
  Loader(const Loader&) = delete;

  // Tensor `name` (prefixed) with `shape`, converted to f32 on the device.
  Result<TensorView> load(const std::string& name, const Shape& shape) {
    std::vector<std::string> names{name};
    return load_concat(names, shape, {});
  }
  // Several tensors of `part` shape stacked along dim 0; names listed in `zero` are not read (zeros).
  Result<TensorView> load_concat(const std::vector<std::string>& names, const Shape& part,
                                 const std::vector<bool>& zero) {
    const int64_t part_numel = part.numel();
    std::vector<float> host(static_cast<std::size_t>(part_numel) * names.size(), 0.0f);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (!zero.empty() && zero[i]) continue;
      FATHOM_TRY(read(names[i], part, host.data() + i * static_cast<std::size_t>(part_numel)));
    }
    Shape shape = part;
    shape.dims[0] = part[0] * static_cast<int64_t>(names.size());
    return upload(host, shape);
  }
  bool has(const std::string& name) const { return ckpt_.find(prefix_ + name) != nullptr; }
  const std::string& prefix() const { return prefix_; }

  Status read(const std::string& name, const Shape& shape, float* dst) {
    const std::string full = prefix_ + name;
    const formats::TensorInfo* info = ckpt_.find(full);
    if (!info)
      return make_error(ErrorCode::kLoadFailed, "tensor '" + full + "' (expected shape " + shape.to_string() +
                                                    ") is missing from " + ckpt_.description());
    bool same = static_cast<int>(info->shape.size()) == shape.rank;
    for (int i = 0; same && i < shape.rank; ++i) same = info->shape[static_cast<std::size_t>(i)] == shape[i];
    if (!same)
      return make_error(ErrorCode::kLoadFailed, "tensor '" + full + "' in " + ckpt_.file_of(full).string() +
                                                    " has shape " + shape_of(info->shape) + ", expected " +
                                                    shape.to_string());
    if (!info->dtype || !is_float(*info->dtype))
      return make_error(ErrorCode::kLoadFailed, "tensor '" + full + "' in " + ckpt_.file_of(full).string() +
                                                    " has dtype " + info->dtype_name +
                                                    "; float32, float16 or bfloat16 expected");
    CpuExecContext cpu;
    return ops::convert(cpu.ctx(), TensorView(info->data, *info->dtype, Shape{info->numel()}),
                        TensorView(dst, DType::kF32, Shape{info->numel()}));
  }

  // Converts the f32 host values to the compute dtype and copies them to the device.
  Result<TensorView> upload(const std::vector<float>& host, const Shape& shape) {
    const DType dt = out_.dtype;
    const std::size_t bytes = host.size() * dtype_size(dt);
    FATHOM_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(allocator_, bytes, account_));
    if (dt == DType::kF32) {
      FATHOM_TRY(allocator_.copy_from_host(buf.data(), host.data(), bytes));
    } else {
      std::vector<unsigned char> narrow(bytes);
      CpuExecContext cpu;
      const Shape flat{static_cast<int64_t>(host.size())};
      FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(host.data(), DType::kF32, flat), TensorView(narrow.data(), dt, flat)));
      FATHOM_TRY(allocator_.copy_from_host(buf.data(), narrow.data(), bytes));
    }
    TensorView view = buf.view(dt, shape);
    out_.bytes += bytes;
    out_.storage.push_back(std::move(buf));
    return view;
  }

 private:
  const formats::Checkpoint& ckpt_;
  std::string prefix_;
  Allocator& allocator_;
  MemoryAccount* account_;
  WhisperWeights& out_;
};

Status load_linear(Loader& l, const std::string& name, int64_t out, int64_t in, bool bias, WhisperLinear* dst) {
  FATHOM_ASSIGN_OR_RETURN(dst->w, l.load(name + ".weight", Shape{out, in}));
  if (bias) { FATHOM_ASSIGN_OR_RETURN(dst->b, l.load(name + ".bias", Shape{out})); }
  return Status::Ok();
}

// k_proj (no bias) and v_proj fused into one [2d, d] projection with bias [0 | v bias].
Status load_kv(Loader& l, const std::string& attn, int64_t d, WhisperLinear* dst) {
  FATHOM_ASSIGN_OR_RETURN(dst->w, l.load_concat({attn + "k_proj.weight", attn + "v_proj.weight"}, Shape{d, d}, {}));
  FATHOM_ASSIGN_OR_RETURN(dst->b, l.load_concat({attn + "k_proj.bias", attn + "v_proj.bias"}, Shape{d}, {true, false}));
  return Status::Ok();
}

Status load_norm(Loader& l, const std::string& name, int64_t d, WhisperNorm* dst) {
  FATHOM_ASSIGN_OR_RETURN(dst->gamma, l.load(name + ".weight", Shape{d}));
  FATHOM_ASSIGN_OR_RETURN(dst->beta, l.load(name + ".bias", Shape{d}));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<WhisperWeights>> WhisperWeights::load(const std::filesystem::path& dir,
                                                             const WhisperConfig& c, Allocator& allocator,
                                                             MemoryAccount* account, DType dtype) {
  if (!is_float(dtype))
    return make_error(ErrorCode::kUnsupported, "whisper weights: compute dtype must be float32, float16 or bfloat16");
  FATHOM_ASSIGN_OR_RETURN(formats::Checkpoint ckpt, formats::Checkpoint::open(dir));
  std::string prefix = ckpt.find("model.encoder.conv1.weight") ? "model." : "";
  if (prefix.empty() && !ckpt.find("encoder.conv1.weight"))
    return make_error(ErrorCode::kLoadFailed, "tensor 'model.encoder.conv1.weight' is missing from " + ckpt.description() +
                                                  " (neither WhisperForConditionalGeneration nor WhisperModel names found)");
  auto w = std::make_unique<WhisperWeights>();
  w->dtype = dtype;
  Loader l(ckpt, prefix, allocator, account, *w);
  const int64_t d = c.d_model;

  // Encoder.
  FATHOM_ASSIGN_OR_RETURN(w->conv1.w, l.load("encoder.conv1.weight", Shape{d, c.num_mel_bins, 3}));
  FATHOM_ASSIGN_OR_RETURN(w->conv1.b, l.load("encoder.conv1.bias", Shape{d}));
  FATHOM_ASSIGN_OR_RETURN(w->conv2.w, l.load("encoder.conv2.weight", Shape{d, d, 3}));
  FATHOM_ASSIGN_OR_RETURN(w->conv2.b, l.load("encoder.conv2.bias", Shape{d}));
  FATHOM_ASSIGN_OR_RETURN(w->encoder_positions, l.load("encoder.embed_positions.weight", Shape{c.max_source_positions, d}));
  for (int i = 0; i < c.encoder_layers; ++i) {
    const std::string p = "encoder.layers." + std::to_string(i) + ".";
    WhisperEncoderLayer L;
    FATHOM_TRY(load_norm(l, p + "self_attn_layer_norm", d, &L.attn_norm));
    const std::string a = p + "self_attn.";
    FATHOM_ASSIGN_OR_RETURN(L.qkv.w, l.load_concat({a + "q_proj.weight", a + "k_proj.weight", a + "v_proj.weight"},
                                                   Shape{d, d}, {}));
    FATHOM_ASSIGN_OR_RETURN(L.qkv.b, l.load_concat({a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"}, Shape{d},
                                                   {false, true, false}));
    FATHOM_TRY(load_linear(l, a + "out_proj", d, d, true, &L.out));
    FATHOM_TRY(load_norm(l, p + "final_layer_norm", d, &L.ffn_norm));
    FATHOM_TRY(load_linear(l, p + "fc1", c.encoder_ffn_dim, d, true, &L.fc1));
    FATHOM_TRY(load_linear(l, p + "fc2", d, c.encoder_ffn_dim, true, &L.fc2));
    w->encoder_layers.push_back(L);
  }
  FATHOM_TRY(load_norm(l, "encoder.layer_norm", d, &w->encoder_norm));

  // Decoder.
  FATHOM_ASSIGN_OR_RETURN(w->embed_tokens, l.load("decoder.embed_tokens.weight", Shape{c.vocab_size, d}));
  FATHOM_ASSIGN_OR_RETURN(w->decoder_positions, l.load("decoder.embed_positions.weight", Shape{c.max_target_positions, d}));
  for (int i = 0; i < c.decoder_layers; ++i) {
    const std::string p = "decoder.layers." + std::to_string(i) + ".";
    WhisperDecoderLayer L;
    FATHOM_TRY(load_norm(l, p + "self_attn_layer_norm", d, &L.self_norm));
    FATHOM_TRY(load_linear(l, p + "self_attn.q_proj", d, d, true, &L.self_q));
    FATHOM_TRY(load_kv(l, p + "self_attn.", d, &L.self_kv));
    FATHOM_TRY(load_linear(l, p + "self_attn.out_proj", d, d, true, &L.self_out));
    FATHOM_TRY(load_norm(l, p + "encoder_attn_layer_norm", d, &L.cross_norm));
    FATHOM_TRY(load_linear(l, p + "encoder_attn.q_proj", d, d, true, &L.cross_q));
    FATHOM_TRY(load_kv(l, p + "encoder_attn.", d, &L.cross_kv));
    FATHOM_TRY(load_linear(l, p + "encoder_attn.out_proj", d, d, true, &L.cross_out));
    FATHOM_TRY(load_norm(l, p + "final_layer_norm", d, &L.ffn_norm));
    FATHOM_TRY(load_linear(l, p + "fc1", c.decoder_ffn_dim, d, true, &L.fc1));
    FATHOM_TRY(load_linear(l, p + "fc2", d, c.decoder_ffn_dim, true, &L.fc2));
    w->decoder_layers.push_back(L);
  }
  FATHOM_TRY(load_norm(l, "decoder.layer_norm", d, &w->decoder_norm));

  // proj_out lives outside the "model." prefix and is normally tied (absent or identical).
  w->lm_head = w->embed_tokens;
  if (const auto* info = ckpt.find("proj_out.weight"); info && !prefix.empty()) {
    std::vector<float> host(static_cast<std::size_t>(c.vocab_size) * static_cast<std::size_t>(d));
    Loader raw(ckpt, "", allocator, account, *w);
    FATHOM_TRY(raw.read("proj_out.weight", Shape{c.vocab_size, d}, host.data()));
    std::vector<float> embed(host.size());
    FATHOM_TRY(l.read("decoder.embed_tokens.weight", Shape{c.vocab_size, d}, embed.data()));
    if (std::memcmp(host.data(), embed.data(), host.size() * sizeof(float)) != 0) {
      FATHOM_ASSIGN_OR_RETURN(w->lm_head, raw.upload(host, Shape{c.vocab_size, d}));
    }
  }
  return w;
}

}  // namespace fathom::models::whisper
