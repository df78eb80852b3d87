#include "models/bert/bert_model.h"

#include <cmath>

#include "base/log.h"
#include "formats/safetensors.h"
#include "formats/sentence_transformers.h"
#include "formats/tokenizer/tokenizer.h"
#include "layers/linear.h"
#include "models/bert/bert_config.h"
#include "models/weights.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/pooling.h"

namespace fathom::models::bert {
namespace {

struct EncoderLayer {
  layers::Linear qkv;       // fused [3H, H]: query | key | value
  layers::Linear attn_out;  // [H, H]
  layers::LayerNorm attn_norm;
  layers::Linear intermediate;  // [I, H]
  layers::Linear output;        // [H, I]
  layers::LayerNorm out_norm;
};

ops::PoolingMode to_op(formats::PoolingKind k) {
  switch (k) {
    case formats::PoolingKind::kCls: return ops::PoolingMode::kCls;
    case formats::PoolingKind::kMean: return ops::PoolingMode::kMean;
    case formats::PoolingKind::kMax: return ops::PoolingMode::kMax;
    case formats::PoolingKind::kLastToken: return ops::PoolingMode::kLastToken;
  }
  return ops::PoolingMode::kMean;
}

std::size_t align64(std::size_t n) { return (n + 63) / 64 * 64; }

class BertEmbedder final : public Model, public Embedder {
 public:
  BertEmbedder(ModelInfo info, std::string architecture, Device device, DType dtype, std::size_t budget)
      : info_(std::move(info)), architecture_(std::move(architecture)), device_(device), dtype_(dtype),
        account_(std::make_unique<MemoryAccount>(architecture_, budget)) {}

  Status init(const std::filesystem::path& dir, const nlohmann::json& config, bool roberta) {
    const auto config_path = dir / "config.json";
    FATHOM_ASSIGN_OR_RETURN(cfg_, parse_bert_config(config, config_path, roberta));
    FATHOM_ASSIGN_OR_RETURN(auto st, formats::read_sentence_transformers_config(dir));
    pooling_ = to_op(st.pooling);
    normalize_ = st.normalize;
    if (st.pooling_dimension && *st.pooling_dimension != cfg_.hidden_size)
      return make_error(ErrorCode::kLoadFailed, st.pooling_source + ": embedding dimension " +
                                                    std::to_string(*st.pooling_dimension) + " differs from hidden_size " +
                                                    std::to_string(cfg_.hidden_size) + " in " + config_path.string());
    FATHOM_ASSIGN_OR_RETURN(auto tok_max, formats::read_tokenizer_max_length(dir));
    max_tokens_ = formats::resolve_max_input_tokens(st.max_seq_length, tok_max, cfg_.position_limit());

    allocator_ = allocator_for(device_);
    if (!allocator_)
      return make_error(ErrorCode::kUnsupported, "no allocator for device " + device_.to_string() + " in this build");
    FATHOM_ASSIGN_OR_RETURN(tokenizer_, formats::Tokenizer::load(dir / "tokenizer.json"));
    if (tokenizer_->vocab_size() > cfg_.vocab_size)
      FATHOM_LOG(kWarn) << dir.string() << ": tokenizer has " << tokenizer_->vocab_size()
                        << " ids but the model's vocab_size is " << cfg_.vocab_size;

    FATHOM_ASSIGN_OR_RETURN(auto ckpt, formats::Checkpoint::open(dir));
    FATHOM_TRY(load_weights(ckpt));

    scratch_ = std::make_unique<Workspace>(*allocator_, account_.get());
    activations_ = std::make_unique<Workspace>(*allocator_, account_.get());
    ctx_.device = device_;
    ctx_.allocator = allocator_;
    ctx_.account = account_.get();
    ctx_.workspace = scratch_.get();
    return Status::Ok();
  }

  // Model
  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return architecture_; }
  DType dtype() const override { return dtype_; }
  Device device() const override { return device_; }
  std::size_t memory_bytes() const override { return account_->in_use(); }
  Embedder* as_embedder() override { return this; }

  // Embedder
  const formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int max_input_tokens() const override { return max_tokens_; }
  int embedding_dim() const override { return cfg_.hidden_size; }
  bool supports_matryoshka() const override { return cfg_.is_matryoshka || !cfg_.matryoshka_dimensions.empty(); }
  std::vector<int> matryoshka_dimensions() const override {
    if (!cfg_.matryoshka_dimensions.empty()) return cfg_.matryoshka_dimensions;
    if (cfg_.is_matryoshka) return {cfg_.hidden_size};
    return {};
  }
  bool normalizes_by_default() const override { return normalize_; }
  Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) override;

 private:
  Status load_weights(const formats::Checkpoint& ckpt);
  Result<TensorView> load(const formats::Checkpoint& ckpt, const std::string& name, const Shape& shape) {
    return weights_->load(ckpt, prefix_ + name, shape);
  }
  Result<layers::Linear> load_linear(const formats::Checkpoint& ckpt, const std::string& name, int64_t out, int64_t in) {
    layers::Linear l;
    FATHOM_ASSIGN_OR_RETURN(l.weight, load(ckpt, name + ".weight", Shape{out, in}));
    FATHOM_ASSIGN_OR_RETURN(l.bias, load(ckpt, name + ".bias", Shape{out}));
    return l;
  }
  Result<layers::LayerNorm> load_norm(const formats::Checkpoint& ckpt, const std::string& name) {
    layers::LayerNorm n;
    n.eps = cfg_.layer_norm_eps;
    const int64_t h = cfg_.hidden_size;
    // Older checkpoints name LayerNorm parameters gamma / beta.
    const bool old = !ckpt.find(prefix_ + name + ".weight") && ckpt.find(prefix_ + name + ".gamma");
    FATHOM_ASSIGN_OR_RETURN(n.gamma, load(ckpt, name + (old ? ".gamma" : ".weight"), Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(n.beta, load(ckpt, name + (old ? ".beta" : ".bias"), Shape{h}));
    return n;
  }

  ModelInfo info_;
  std::string architecture_;
  Device device_;
  DType dtype_;
  std::unique_ptr<MemoryAccount> account_;
  Allocator* allocator_ = nullptr;
  std::unique_ptr<WeightStore> weights_;
  std::unique_ptr<Workspace> scratch_;
  std::unique_ptr<Workspace> activations_;
  ExecContext ctx_;

  BertConfig cfg_;
  ops::PoolingMode pooling_ = ops::PoolingMode::kMean;
  bool normalize_ = false;
  int max_tokens_ = 0;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  std::string prefix_;
  TensorView word_, position_, token_type_;
  layers::LayerNorm embed_norm_;
  std::vector<EncoderLayer> layers_;
};

Status BertEmbedder::load_weights(const formats::Checkpoint& ckpt) {
  weights_ = std::make_unique<WeightStore>(*allocator_, account_.get(), dtype_);
  const std::string probe = "embeddings.word_embeddings.weight";
  bool found = false;
  for (const char* p : {"", "bert.", "roberta.", "model."}) {
    if (ckpt.find(std::string(p) + probe)) {
      prefix_ = p;
      found = true;
      break;
    }
  }
  if (!found)
    return make_error(ErrorCode::kLoadFailed, ckpt.description() + ": tensor '" + probe +
                                                  "' is missing (looked for the prefixes '', 'bert.', 'roberta.', 'model.')");
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  FATHOM_ASSIGN_OR_RETURN(word_, load(ckpt, probe, Shape{cfg_.vocab_size, h}));
  FATHOM_ASSIGN_OR_RETURN(position_, load(ckpt, "embeddings.position_embeddings.weight", Shape{cfg_.max_position_embeddings, h}));
  if (cfg_.type_vocab_size > 0) {
    FATHOM_ASSIGN_OR_RETURN(token_type_, load(ckpt, "embeddings.token_type_embeddings.weight", Shape{cfg_.type_vocab_size, h}));
  }
  FATHOM_ASSIGN_OR_RETURN(embed_norm_, load_norm(ckpt, "embeddings.LayerNorm"));
  for (int i = 0; i < cfg_.num_layers; ++i) {
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    EncoderLayer l;
    std::vector<std::string> w, b;
    for (const char* part : {"query", "key", "value"}) {
      w.push_back(prefix_ + p + "attention.self." + part + ".weight");
      b.push_back(prefix_ + p + "attention.self." + part + ".bias");
    }
    FATHOM_ASSIGN_OR_RETURN(l.qkv.weight, weights_->load_concat(ckpt, w, Shape{h, h}));
    FATHOM_ASSIGN_OR_RETURN(l.qkv.bias, weights_->load_concat(ckpt, b, Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(l.attn_out, load_linear(ckpt, p + "attention.output.dense", h, h));
    FATHOM_ASSIGN_OR_RETURN(l.attn_norm, load_norm(ckpt, p + "attention.output.LayerNorm"));
    FATHOM_ASSIGN_OR_RETURN(l.intermediate, load_linear(ckpt, p + "intermediate.dense", inter, h));
    FATHOM_ASSIGN_OR_RETURN(l.output, load_linear(ckpt, p + "output.dense", h, inter));
    FATHOM_ASSIGN_OR_RETURN(l.out_norm, load_norm(ckpt, p + "output.LayerNorm"));
    layers_.push_back(l);
  }
  // A layer beyond num_hidden_layers means config and checkpoint disagree.
  const std::string extra = prefix_ + "encoder.layer." + std::to_string(cfg_.num_layers) + ".output.dense.weight";
  if (ckpt.find(extra))
    return make_error(ErrorCode::kLoadFailed, ckpt.file_of(extra).string() + ": tensor '" + extra +
                                                  "' exists but config.json declares num_hidden_layers = " +
                                                  std::to_string(cfg_.num_layers));
  return Status::Ok();
}

Result<std::vector<float>> BertEmbedder::embed(const std::vector<std::vector<int32_t>>& sequences) {
  const int64_t batch = static_cast<int64_t>(sequences.size());
  if (batch == 0) return std::vector<float>();
  std::vector<int> lengths;
  lengths.reserve(sequences.size());
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto& seq = sequences[s];
    if (seq.empty())
      return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + " has no tokens");
    if (static_cast<int64_t>(seq.size()) > max_tokens_)
      return make_error(ErrorCode::kTooLarge, "input " + std::to_string(s) + " has " + std::to_string(seq.size()) +
                                                  " tokens, more than the model's limit of " + std::to_string(max_tokens_));
    for (int32_t id : seq)
      if (id < 0 || id >= cfg_.vocab_size)
        return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + ": token id " + std::to_string(id) +
                                                           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
    lengths.push_back(static_cast<int>(seq.size()));
  }
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  const int64_t t = vb.total(), h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  std::vector<int32_t> ids(static_cast<std::size_t>(t)), pos(static_cast<std::size_t>(t));
  for (std::size_t s = 0, k = 0; s < sequences.size(); ++s)
    for (std::size_t i = 0; i < sequences[s].size(); ++i, ++k) {
      ids[k] = sequences[s][i];
      pos[k] = static_cast<int32_t>(i) + cfg_.position_offset();
    }

  // One activation arena per call: hidden, qkv, attention output, projection, intermediate, pooled, ids.
  const std::size_t es = dtype_size(dtype_);
  const std::size_t sizes[] = {align64(t * h * es), align64(t * 3 * h * es), align64(t * h * es), align64(t * h * es),
                               align64(t * inter * es), align64(batch * h * es), align64(t * 4), align64(t * 4),
                               align64((batch + 1) * 4), align64(batch * h * 4)};
  std::size_t total = 0;
  for (std::size_t s : sizes) total += s;
  FATHOM_ASSIGN_OR_RETURN(void* arena, activations_->get(total));
  auto* p = static_cast<uint8_t*>(arena);
  void* regions[10];
  for (int i = 0; i < 10; ++i) {
    regions[i] = p;
    p += sizes[i];
  }
  TensorView hidden(regions[0], dtype_, Shape{t, h}, device_);
  TensorView qkv(regions[1], dtype_, Shape{t, 3 * h}, device_);
  TensorView attn(regions[2], dtype_, Shape{t, h}, device_);
  TensorView proj(regions[3], dtype_, Shape{t, h}, device_);
  TensorView mid(regions[4], dtype_, Shape{t, inter}, device_);
  TensorView pooled(regions[5], dtype_, Shape{batch, h}, device_);
  TensorView ids_d(regions[6], DType::kI32, Shape{t}, device_);
  TensorView pos_d(regions[7], DType::kI32, Shape{t}, device_);
  vb.cu_seqlens_device = TensorView(regions[8], DType::kI32, Shape{batch + 1}, device_);
  FATHOM_TRY(allocator_->copy_from_host(ids_d.data, ids.data(), ids.size() * 4));
  FATHOM_TRY(allocator_->copy_from_host(pos_d.data, pos.data(), pos.size() * 4));
  FATHOM_TRY(allocator_->copy_from_host(vb.cu_seqlens_device.data, vb.cu_seqlens.data(), vb.cu_seqlens.size() * 4));

  ExecContext& ctx = ctx_;
  ops::EmbeddingTables tables{word_, &position_, token_type_.data ? &token_type_ : nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx, ids_d, &pos_d, nullptr, tables, hidden));
  FATHOM_TRY(embed_norm_.forward(ctx, hidden, nullptr, hidden));
  const float scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim()));
  for (const EncoderLayer& l : layers_) {
    FATHOM_TRY(l.qkv.forward(ctx, hidden, qkv));
    FATHOM_TRY(ops::attention_varlen(ctx, qkv, vb, cfg_.num_heads, cfg_.head_dim(), scale, attn));
    FATHOM_TRY(l.attn_out.forward(ctx, attn, proj));
    FATHOM_TRY(l.attn_norm.forward(ctx, proj, &hidden, hidden));
    FATHOM_TRY(l.intermediate.forward(ctx, hidden, mid));
    FATHOM_TRY(ops::gelu(ctx, mid, mid, cfg_.gelu));
    FATHOM_TRY(l.output.forward(ctx, mid, proj));
    FATHOM_TRY(l.out_norm.forward(ctx, proj, &hidden, hidden));
  }
  FATHOM_TRY(ops::pool(ctx, hidden, vb, pooling_, pooled));
  std::vector<float> out(static_cast<std::size_t>(batch * h));
  if (dtype_ != DType::kF32) {  // 16-bit compute: embeddings leave as f32
    TensorView pooled32(regions[9], DType::kF32, Shape{batch, h}, device_);
    FATHOM_TRY(ops::convert(ctx, pooled, pooled32));
    pooled = pooled32;
  }
  FATHOM_TRY(allocator_->copy_to_host(out.data(), pooled.data, out.size() * sizeof(float)));
  return out;
}

}  // namespace

Result<std::unique_ptr<Model>> load_bert_family(const std::filesystem::path& dir, const nlohmann::json& config,
                                                const LoadOptions& options, const ModelInfo& info, bool roberta) {
  std::string arch;
  if (auto it = config.find("architectures"); it != config.end() && it->is_array() && !it->empty() && (*it)[0].is_string())
    arch = (*it)[0].get<std::string>();
  else
    arch = config.value("model_type", info.name);
  DType dtype = DType::kF32;
  if (options.dtype) {
    dtype = *options.dtype;
  } else if (options.device.kind == DeviceKind::kCuda) {
    auto d = config.contains("torch_dtype") ? config["torch_dtype"] : config.value("dtype", nlohmann::json());
    auto parsed = d.is_string() ? parse_dtype(d.get<std::string>()) : std::nullopt;
    dtype = parsed && (*parsed == DType::kBF16 || *parsed == DType::kF16) ? *parsed : DType::kF16;
  }
  if (!ops::compute_supported(options.device.kind, dtype))
    return make_error(ErrorCode::kUnsupported, dir.string() + ": " + info.name + " cannot compute in " +
                                                   std::string(dtype_name(dtype)) + " on " + options.device.to_string() +
                                                   " in this build");
  if (Status dev = ops::prepare_device(options.device); !dev.ok()) return dev.error();
  auto model = std::make_unique<BertEmbedder>(info, arch, options.device, dtype, options.memory_budget);
  Status s = model->init(dir, config, roberta);
  if (!s.ok()) return s.error();
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fathom::models::bert
