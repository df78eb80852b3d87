#include "models/bert/bert_model.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <optional>

#include "base/log.h"
#include "formats/safetensors.h"
#include "formats/sentence_transformers.h"
#include "formats/tokenizer/tokenizer.h"
#include "layers/linear.h"
#include "models/bert/m3_heads.h"
#include "models/bert/bert_config.h"
#include "models/bert/classifier_head.h"
#include "models/weights.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/convert.h"
#include "ops/device_runner.h"
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

class BertEmbedder final : public Model, public Embedder, public Classifier {
 public:
  BertEmbedder(ModelInfo info, std::string architecture, Device device, DType dtype, std::size_t budget)
      : info_(std::move(info)), architecture_(std::move(architecture)), device_(device), dtype_(dtype),
        account_(std::make_unique<MemoryAccount>(architecture_, budget)) {}
  ~BertEmbedder() override {
    if (runner_ && runner_->profiling()) {
      double total = 0;
      auto stages = runner_->profile();
      for (const auto& st : stages) total += st.ms;
      for (const auto& st : stages)
        FATHOM_LOG(kInfo) << "profile " << architecture_ << " " << st.label << ": " << st.ms << " ms over " << st.count
                          << " calls (" << (total > 0 ? 100.0 * st.ms / total : 0.0) << " %)";
    }
    if (runner_) (void)runner_->synchronize();
    runner_.reset();  // graphs go before the arena they point into
    graph_arena_.reset();
  }

  // graphs: capture whole forward passes per token bucket (up to max_batch_tokens) where the device can.
  // classifier: a *ForSequenceClassification checkpoint (head on the first token, logits out).
  Status init(const std::filesystem::path& dir, const nlohmann::json& config, bool roberta, bool classifier,
              bool graphs, int max_batch_tokens, const ops::RunnerOptions& runner_options = {}) {
    const auto config_path = dir / "config.json";
    FATHOM_ASSIGN_OR_RETURN(cfg_, parse_bert_config(config, config_path, roberta));
    FATHOM_ASSIGN_OR_RETURN(auto st, formats::read_sentence_transformers_config(dir));
    pooling_ = to_op(st.pooling);
    normalize_ = st.normalize;
    if (classifier) {
      FATHOM_ASSIGN_OR_RETURN(ClassifierHeadConfig head, parse_classifier_head(config, config_path, roberta));
      head_ = std::move(head);
      pooling_ = ops::PoolingMode::kCls;  // the head reads the first token
      normalize_ = false;
      narrow_classifier_tasks(info_, *head_);
    }
    if (!classifier && st.pooling_dimension && *st.pooling_dimension != cfg_.hidden_size)
      return make_error(ErrorCode::kLoadFailed, st.pooling_source + ": embedding dimension " +
                                                    std::to_string(*st.pooling_dimension) + " differs from hidden_size " +
                                                    std::to_string(cfg_.hidden_size) + " in " + config_path.string());
    FATHOM_ASSIGN_OR_RETURN(auto tok_max, formats::read_tokenizer_max_length(dir));
    max_tokens_ = formats::resolve_max_input_tokens(st.max_seq_length, tok_max, cfg_.position_limit());

    allocator_ = allocator_for(device_);
    if (!allocator_)
      return make_error(ErrorCode::kUnsupported, "no allocator for device " + device_.to_string() + " in this build");
    FATHOM_ASSIGN_OR_RETURN(tokenizer_, formats::Tokenizer::load(dir / "tokenizer.json"));
    if (tokenizer_->vocab_size() > cfg_.vocab_size) {
      FATHOM_LOG(kWarn) << dir.string() << ": tokenizer has " << tokenizer_->vocab_size()
                        << " ids but the model's vocab_size is " << cfg_.vocab_size;
    }

    FATHOM_ASSIGN_OR_RETURN(auto ckpt, formats::Checkpoint::open(dir));
    FATHOM_TRY(load_weights(ckpt));
    if (!classifier) {
      FATHOM_ASSIGN_OR_RETURN(m3_, load_m3_heads(dir, cfg_.hidden_size, *weights_, *tokenizer_));
    }

    scratch_ = std::make_unique<Workspace>(*allocator_, account_.get());
    activations_ = std::make_unique<Workspace>(*allocator_, account_.get());
    ctx_.device = device_;
    ctx_.allocator = allocator_;
    ctx_.account = account_.get();
    ctx_.workspace = scratch_.get();
    FATHOM_ASSIGN_OR_RETURN(runner_, ops::DeviceRunner::create(device_, runner_options));
    ctx_.stream = runner_->stream();
    use_graphs_ = graphs && runner_->graphs_supported() && max_batch_tokens >= 16;
    if (use_graphs_) {
      buckets_ = ops::graph_buckets(max_batch_tokens);
      FATHOM_TRY(capture_all_buckets(dir));
    }
    return Status::Ok();
  }

  // Model
  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return architecture_; }
  DType dtype() const override { return dtype_; }
  Device device() const override { return device_; }
  std::size_t memory_bytes() const override { return account_->in_use(); }
  Embedder* as_embedder() override { return head_ ? nullptr : this; }
  Classifier* as_classifier() override { return head_ ? this : nullptr; }
  bool runs_concurrently() const override { return runner_ && runner_->concurrent(); }

  // Embedder
  const formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int max_input_tokens() const override { return max_tokens_; }
  int embedding_dim() const override { return cfg_.hidden_size; }
  bool supports_matryoshka() const override { return cfg_.matryoshka.supported(); }
  std::vector<int> matryoshka_dimensions() const override { return cfg_.matryoshka.list(cfg_.hidden_size); }
  bool normalizes_by_default() const override { return normalize_; }
  Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) override;
  std::vector<TokenOutput> token_outputs() const override {
    if (!m3_) return {};
    return {TokenOutput::kSparse, TokenOutput::kColbert};
  }
  int token_output_width(TokenOutput kind) const override {
    if (!m3_) return 0;
    return kind == TokenOutput::kSparse ? 1 : m3_->colbert_dim;
  }
  Result<std::vector<float>> embed_tokens(const std::vector<std::vector<int32_t>>& sequences,
                                          TokenOutput kind) override;

  // Classifier
  std::vector<std::string> labels() const override { return head_ ? head_->labels : std::vector<std::string>(); }
  ScoreActivation activation() const override { return head_ ? head_->activation : ScoreActivation::kIdentity; }
  Result<std::vector<float>> classify(const std::vector<std::vector<int32_t>>& sequences) override;

 private:
  // Rows out of one forward pass: the pooled embedding, or the head's logits.
  int64_t out_dim() const { return head_ ? static_cast<int64_t>(head_->labels.size()) : cfg_.hidden_size; }
  // Segments only matter where the model has a token-type table of more than one row.
  bool uses_segments() const { return head_ && cfg_.type_vocab_size > 1; }
  // Shared by embed() and classify(): checks, unpacks (classifier) and runs the batch.
  Result<std::vector<float>> run(const std::vector<std::vector<int32_t>>& sequences);
  // Checks every sequence (non-empty, within the limit, ids in the vocabulary, segments) and returns the lengths.
  Result<std::vector<int>> check_inputs(const std::vector<std::vector<int32_t>>& sequences) const;
  // Activation views of one forward pass ([t] packed rows, [batch] pooled rows).
  struct Activations {
    TensorView hidden, qkv, attn, proj, mid, pooled, pooled32;
    TensorView head_mid, logits, logits32;  // classifier only: [batch, H], [batch, L] (compute dtype and f32)
  };
  static constexpr int kGraphMaxSeqs = 1024;  // larger batches run eagerly
  std::size_t arena_bytes(int64_t t, int64_t batch) const;
  Activations carve(void* arena, int64_t t, int64_t batch) const;
  Status forward(ExecContext& ctx, const Activations& a, const TensorView& ids, const TensorView& pos,
                 const TensorView* types, const ops::VarlenBatch& vb);
  Result<std::vector<float>> finish(const Activations& a, int64_t batch);
  // Uploads the batch and enqueues the whole forward pass eagerly; `extra_bytes` of the activation arena after
  // the batch's own stay free for the caller, at *extra. Returns the activations (results not yet on the host).
  Result<Activations> forward_eager(const std::vector<std::vector<int32_t>>& sequences, const std::vector<int>& lengths,
                                    std::size_t extra_bytes, uint8_t** extra);
  Result<std::vector<float>> embed_eager(const std::vector<std::vector<int32_t>>& sequences,
                                         const std::vector<int>& lengths);
  Result<std::vector<float>> embed_graph(const std::vector<std::vector<int32_t>>& sequences, int bucket);
  // Fills and uploads the batch description of `bucket`, then replays its graph (capturing it first when
  // missing). Leaves the pooled output in the graph arena; returns its activations.
  Result<Activations> replay_graph(const std::vector<std::vector<int32_t>>& sequences, int bucket);
  // Allocates the graph arena for the largest bucket (every graph points into it). false when the memory
  // budget leaves no room for it (graphs are then captured lazily into an arena sized for each bucket).
  Result<bool> ensure_full_graph_arena();
  Status ensure_graph_arena(std::size_t need);
  // Captures the graph of every token bucket now (at load) so that no request pays for a capture.
  Status capture_all_buckets(const std::filesystem::path& dir);
  int graph_max_seqs(int bucket) const;
  std::size_t graph_arena_bytes(int bucket) const;

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
  std::unique_ptr<ops::DeviceRunner> runner_;  // the model's stream, staging and graphs
  bool use_graphs_ = false;
  std::vector<int> buckets_;
  Buffer graph_arena_;  // activations + batch description that captured graphs point into

  BertConfig cfg_;
  ops::PoolingMode pooling_ = ops::PoolingMode::kMean;
  bool normalize_ = false;
  int max_tokens_ = 0;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  std::string prefix_;
  TensorView word_, position_, token_type_;
  layers::LayerNorm embed_norm_;
  std::vector<EncoderLayer> layers_;
  std::optional<ClassifierHeadConfig> head_;  // set for *ForSequenceClassification
  layers::Linear head_dense_, head_out_;
  std::optional<M3Heads> m3_;  // bge-m3's sparse / colbert heads, when the directory has them
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
  if (head_) {
    const int64_t labels = static_cast<int64_t>(head_->labels.size());
    auto raw = [&](const std::string& name, Shape shape) { return weights_->load(ckpt, name, shape); };
    const std::string dense = (head_->dense_under_encoder ? prefix_ : std::string()) + head_->dense;
    FATHOM_ASSIGN_OR_RETURN(head_dense_.weight, raw(dense + ".weight", Shape{h, h}));
    FATHOM_ASSIGN_OR_RETURN(head_dense_.bias, raw(dense + ".bias", Shape{h}));
    FATHOM_ASSIGN_OR_RETURN(head_out_.weight, raw(head_->out + ".weight", Shape{labels, h}));
    FATHOM_ASSIGN_OR_RETURN(head_out_.bias, raw(head_->out + ".bias", Shape{labels}));
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
  if (head_) return make_error(ErrorCode::kUnsupported, architecture_ + " is a classifier, not an embedding model");
  return run(sequences);
}

Result<std::vector<float>> BertEmbedder::classify(const std::vector<std::vector<int32_t>>& sequences) {
  if (!head_) return make_error(ErrorCode::kUnsupported, architecture_ + " has no classification head");
  return run(sequences);
}

Result<std::vector<int>> BertEmbedder::check_inputs(const std::vector<std::vector<int32_t>>& sequences) const {
  std::vector<int> lengths;
  lengths.reserve(sequences.size());
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    const auto& seq = sequences[s];
    if (seq.empty())
      return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + " has no tokens");
    if (static_cast<int64_t>(seq.size()) > max_tokens_)
      return make_error(ErrorCode::kTooLarge, "input " + std::to_string(s) + " has " + std::to_string(seq.size()) +
                                                  " tokens, more than the model's limit of " + std::to_string(max_tokens_));
    for (int32_t packed : seq) {
      const int32_t id = head_ ? unpack_id(packed) : packed;
      if (id < 0 || id >= cfg_.vocab_size)
        return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + ": token id " + std::to_string(id) +
                                                           " is outside the vocabulary [0, " + std::to_string(cfg_.vocab_size) + ")");
      if (head_ && (packed < 0 || (uses_segments() && unpack_segment(packed) >= cfg_.type_vocab_size)))
        return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + ": segment " +
                                                           std::to_string(unpack_segment(packed)) + " is outside [0, " +
                                                           std::to_string(std::max(1, cfg_.type_vocab_size)) + ")");
    }
    lengths.push_back(static_cast<int>(seq.size()));
  }
  return lengths;
}

Result<std::vector<float>> BertEmbedder::run(const std::vector<std::vector<int32_t>>& sequences) {
  const int64_t batch = static_cast<int64_t>(sequences.size());
  if (batch == 0) return std::vector<float>();
  FATHOM_ASSIGN_OR_RETURN(const std::vector<int> lengths, check_inputs(sequences));
  if (use_graphs_) {
    int64_t t = 0;
    for (int len : lengths) t += len;
    const int bucket = ops::graph_bucket_for(buckets_, static_cast<int>(t));
    if (bucket > 0 && batch <= graph_max_seqs(bucket)) return embed_graph(sequences, bucket);
  }
  return embed_eager(sequences, lengths);
}

std::size_t BertEmbedder::arena_bytes(int64_t t, int64_t batch) const {
  const std::size_t es = dtype_size(dtype_);
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  const int64_t l = head_ ? out_dim() : 0;
  return align64(t * h * es) + align64(t * 3 * h * es) + 2 * align64(t * h * es) + align64(t * inter * es) +
         align64(batch * h * es) + align64(batch * h * 4) +
         (head_ ? align64(batch * h * es) + align64(batch * l * es) + align64(batch * l * 4) : 0);
}

BertEmbedder::Activations BertEmbedder::carve(void* arena, int64_t t, int64_t batch) const {
  const std::size_t es = dtype_size(dtype_);
  const int64_t h = cfg_.hidden_size, inter = cfg_.intermediate_size;
  auto* p = static_cast<uint8_t*>(arena);
  auto take = [&](DType dt, Shape shape, std::size_t bytes) {
    TensorView v(p, dt, shape, device_);
    p += align64(bytes);
    return v;
  };
  Activations a;
  a.hidden = take(dtype_, Shape{t, h}, t * h * es);
  a.qkv = take(dtype_, Shape{t, 3 * h}, t * 3 * h * es);
  a.attn = take(dtype_, Shape{t, h}, t * h * es);
  a.proj = take(dtype_, Shape{t, h}, t * h * es);
  a.mid = take(dtype_, Shape{t, inter}, t * inter * es);
  a.pooled = take(dtype_, Shape{batch, h}, batch * h * es);
  a.pooled32 = take(DType::kF32, Shape{batch, h}, batch * h * 4);
  if (head_) {
    const int64_t l = out_dim();
    a.head_mid = take(dtype_, Shape{batch, h}, batch * h * es);
    a.logits = take(dtype_, Shape{batch, l}, batch * l * es);
    a.logits32 = take(DType::kF32, Shape{batch, l}, batch * l * 4);
  }
  return a;
}

// The whole forward pass, enqueued on ctx.stream: embeddings, every layer, pooling, f32 conversion.
// Capturable when `vb` carries a persistent device batch description (no allocation, sync or host read).
Status BertEmbedder::forward(ExecContext& ctx, const Activations& a, const TensorView& ids, const TensorView& pos,
                             const TensorView* types, const ops::VarlenBatch& vb) {
  ops::DeviceRunner& r = *runner_;  // r.mark(label): stage timing when profiling (no-op otherwise)
  r.mark(nullptr);
  ops::EmbeddingTables tables{word_, &position_, token_type_.data ? &token_type_ : nullptr};
  FATHOM_TRY(ops::embed_tokens(ctx, ids, &pos, types, tables, a.hidden));
  FATHOM_TRY(embed_norm_.forward(ctx, a.hidden, nullptr, a.hidden));
  r.mark("embeddings");
  const float scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim()));
  for (const EncoderLayer& l : layers_) {
    FATHOM_TRY(l.qkv.forward(ctx, a.hidden, a.qkv));
    r.mark("qkv_gemm");
    FATHOM_TRY(ops::attention_varlen(ctx, a.qkv, vb, cfg_.num_heads, cfg_.head_dim(), scale, a.attn));
    r.mark("attention");
    FATHOM_TRY(l.attn_out.forward(ctx, a.attn, a.proj));
    r.mark("attn_out_gemm");
    FATHOM_TRY(l.attn_norm.forward(ctx, a.proj, &a.hidden, a.hidden));
    r.mark("layer_norm");
    FATHOM_TRY(l.intermediate.forward(ctx, a.hidden, a.mid));
    r.mark("ffn_up_gemm");
    FATHOM_TRY(ops::gelu(ctx, a.mid, a.mid, cfg_.gelu));
    r.mark("gelu");
    FATHOM_TRY(l.output.forward(ctx, a.mid, a.proj));
    r.mark("ffn_down_gemm");
    FATHOM_TRY(l.out_norm.forward(ctx, a.proj, &a.hidden, a.hidden));
    r.mark("layer_norm");
  }
  FATHOM_TRY(ops::pool(ctx, a.hidden, vb, pooling_, a.pooled));
  if (head_) {  // dense -> tanh -> out on the first token
    FATHOM_TRY(head_dense_.forward(ctx, a.pooled, a.head_mid));
    FATHOM_TRY(ops::tanh(ctx, a.head_mid, a.head_mid));
    FATHOM_TRY(head_out_.forward(ctx, a.head_mid, a.logits));
    if (dtype_ != DType::kF32) FATHOM_TRY(ops::convert(ctx, a.logits, a.logits32));
    r.mark("classifier_head");
    return Status::Ok();
  }
  if (dtype_ != DType::kF32) {  // 16-bit compute: embeddings leave as f32
    FATHOM_TRY(ops::convert(ctx, a.pooled, a.pooled32));
  }
  r.mark("pool");
  return Status::Ok();
}

Result<std::vector<float>> BertEmbedder::finish(const Activations& a, int64_t batch) {
  const std::size_t n = static_cast<std::size_t>(batch * out_dim());
  const TensorView& pooled = head_ ? (dtype_ == DType::kF32 ? a.logits : a.logits32)
                                   : (dtype_ == DType::kF32 ? a.pooled : a.pooled32);
  FATHOM_ASSIGN_OR_RETURN(void* host, runner_->staging(1, n * sizeof(float)));
  FATHOM_TRY(runner_->download(host, pooled.data, n * sizeof(float)));
  FATHOM_TRY(runner_->synchronize());
  const float* f = static_cast<const float*>(host);
  return std::vector<float>(f, f + n);
}

Result<std::vector<float>> BertEmbedder::embed_eager(const std::vector<std::vector<int32_t>>& sequences,
                                                     const std::vector<int>& lengths) {
  FATHOM_ASSIGN_OR_RETURN(Activations a, forward_eager(sequences, lengths, 0, nullptr));
  return finish(a, static_cast<int64_t>(sequences.size()));
}

Result<BertEmbedder::Activations> BertEmbedder::forward_eager(const std::vector<std::vector<int32_t>>& sequences,
                                                              const std::vector<int>& lengths, std::size_t extra_bytes,
                                                              uint8_t** extra) {
  const int64_t batch = static_cast<int64_t>(sequences.size());
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  const int64_t t = vb.total();
  // Arena: activations, then ids, positions and cu_seqlens (int32).
  const std::size_t act = arena_bytes(t, batch);
  const std::size_t ids_bytes = align64(t * 4), cu_bytes = align64((batch + 1) * 4);
  // Layout after the activations: ids, positions, cu_seqlens, then (segments in use) token types.
  const std::size_t types_bytes = uses_segments() ? ids_bytes : 0;
  const std::size_t upload_bytes = 2 * ids_bytes + cu_bytes + types_bytes;
  FATHOM_ASSIGN_OR_RETURN(void* arena, activations_->get(act + upload_bytes + extra_bytes));
  if (extra) *extra = static_cast<uint8_t*>(arena) + act + upload_bytes;
  Activations a = carve(arena, t, batch);
  auto* p = static_cast<uint8_t*>(arena) + act;
  TensorView ids_d(p, DType::kI32, Shape{t}, device_);
  TensorView pos_d(p + ids_bytes, DType::kI32, Shape{t}, device_);
  vb.cu_seqlens_device = TensorView(p + 2 * ids_bytes, DType::kI32, Shape{batch + 1}, device_);
  TensorView types_d(p + 2 * ids_bytes + cu_bytes, DType::kI32, Shape{t}, device_);
  // Staged host copy in the same layout, uploaded with one asynchronous copy on the model's stream.
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_->staging(0, upload_bytes));
  auto* host = static_cast<uint8_t*>(stage);
  auto* ids = reinterpret_cast<int32_t*>(host);
  auto* pos = reinterpret_cast<int32_t*>(host + ids_bytes);
  auto* types = reinterpret_cast<int32_t*>(host + 2 * ids_bytes + cu_bytes);
  for (std::size_t s = 0, k = 0; s < sequences.size(); ++s)
    for (std::size_t i = 0; i < sequences[s].size(); ++i, ++k) {
      const int32_t packed = sequences[s][i];
      ids[k] = head_ ? unpack_id(packed) : packed;
      pos[k] = static_cast<int32_t>(i) + cfg_.position_offset();
      if (types_bytes) types[k] = unpack_segment(packed);
    }
  std::memcpy(host + 2 * ids_bytes, vb.cu_seqlens.data(), vb.cu_seqlens.size() * 4);
  FATHOM_TRY(runner_->upload(p, host, upload_bytes));
  FATHOM_TRY(forward(ctx_, a, ids_d, pos_d, types_bytes ? &types_d : nullptr, vb));
  return a;
}

Result<std::vector<float>> BertEmbedder::embed_tokens(const std::vector<std::vector<int32_t>>& sequences,
                                                      TokenOutput kind) {
  if (!m3_) return Embedder::embed_tokens(sequences, kind);
  if (sequences.empty()) return std::vector<float>();
  FATHOM_ASSIGN_OR_RETURN(const std::vector<int> lengths, check_inputs(sequences));
  int64_t t = 0;
  for (int len : lengths) t += len;
  const bool sparse = kind == TokenOutput::kSparse;
  const layers::Linear& head = sparse ? m3_->sparse : m3_->colbert;
  const int64_t w = head.out_features();
  const std::size_t es = dtype_size(dtype_), rows_bytes = align64(t * w * es);
  const std::size_t rows32_bytes = dtype_ == DType::kF32 ? 0 : align64(t * w * 4);  // f32 compute reads `rows`
  uint8_t* extra = nullptr;
  FATHOM_ASSIGN_OR_RETURN(Activations a, forward_eager(sequences, lengths, rows_bytes + rows32_bytes, &extra));
  TensorView rows(extra, dtype_, Shape{t, w}, device_);
  TensorView rows32 = dtype_ == DType::kF32 ? rows : TensorView(extra + rows_bytes, DType::kF32, Shape{t, w}, device_);
  FATHOM_TRY(head.forward(ctx_, a.hidden, rows));
  if (sparse) FATHOM_TRY(ops::relu(ctx_, rows, rows));
  if (dtype_ != DType::kF32) FATHOM_TRY(ops::convert(ctx_, rows, rows32));
  const std::size_t n = static_cast<std::size_t>(t * w);
  FATHOM_ASSIGN_OR_RETURN(void* host, runner_->staging(1, n * sizeof(float)));
  FATHOM_TRY(runner_->download(host, rows32.data, n * sizeof(float)));
  FATHOM_TRY(runner_->synchronize());
  const float* f = static_cast<const float*>(host);
  std::vector<float> out;
  out.reserve(n);
  for (const auto& seq : sequences) {
    if (sparse) {
      for (int32_t id : seq) {
        const bool ignored = std::binary_search(m3_->ignored_ids.begin(), m3_->ignored_ids.end(), id);
        out.push_back(ignored ? 0.0f : *f);
        ++f;
      }
    } else {  // the first token's row is dropped, as FlagEmbedding does
      out.insert(out.end(), f + w, f + static_cast<int64_t>(seq.size()) * w);
      f += static_cast<int64_t>(seq.size()) * w;
    }
  }
  return out;
}

int BertEmbedder::graph_max_seqs(int bucket) const { return std::min(bucket, kGraphMaxSeqs); }

std::size_t BertEmbedder::graph_arena_bytes(int bucket) const {
  const int max_seqs = graph_max_seqs(bucket);
  return arena_bytes(bucket, max_seqs) + align64(ops::graph_batch_ints(max_seqs, bucket) * 4) +
         (uses_segments() ? align64(static_cast<std::size_t>(bucket) * 4) : 0);
}

// One arena for every graph: activations + batch description of the largest bucket, so that all captured
// graphs point into the same memory.
Status BertEmbedder::ensure_graph_arena(std::size_t need) {
  if (graph_arena_.size() >= need) return Status::Ok();
  runner_->clear_graphs();  // captured graphs point into the old arena
  graph_arena_.reset();
  auto b = Buffer::allocate(*allocator_, std::max(need, graph_arena_bytes(buckets_.back())), account_.get());
  if (!b.ok()) {
    FATHOM_ASSIGN_OR_RETURN(graph_arena_, Buffer::allocate(*allocator_, need, account_.get()));
  } else {
    graph_arena_ = std::move(b).value();
  }
  return Status::Ok();
}

Result<bool> BertEmbedder::ensure_full_graph_arena() {
  const std::size_t full = graph_arena_bytes(buckets_.back());
  if (graph_arena_.size() >= full) return true;
  auto b = Buffer::allocate(*allocator_, full, account_.get());
  if (!b.ok()) {
    if (b.error().code == ErrorCode::kOutOfMemory) return false;
    return b.error();
  }
  runner_->clear_graphs();
  graph_arena_ = std::move(b).value();
  return true;
}

Status BertEmbedder::capture_all_buckets(const std::filesystem::path& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  FATHOM_ASSIGN_OR_RETURN(bool full, ensure_full_graph_arena());
  if (!full) {
    FATHOM_LOG(kWarn) << dir.string() << ": no room for the CUDA graph arena of " << buckets_.back()
                      << " tokens within the memory budget; graphs are captured per bucket on first use";
    return Status::Ok();
  }
  // A stand-in batch per bucket: the graph depends only on the bucket, not on the batch it is captured with.
  const int32_t id = cfg_.pad_token_id >= 0 && cfg_.pad_token_id < cfg_.vocab_size ? cfg_.pad_token_id : 0;
  for (int bucket : buckets_) {
    const int per_seq = std::max(1, std::min(bucket, max_tokens_));
    const int count = std::min(graph_max_seqs(bucket), (bucket + per_seq - 1) / per_seq);
    std::vector<std::vector<int32_t>> seqs;
    for (int i = 0, left = bucket; i < count && left > 0; ++i, left -= per_seq)
      seqs.emplace_back(std::min(per_seq, left), id);
    auto replayed = replay_graph(seqs, bucket);
    if (!replayed.ok()) return replayed.error();
  }
  FATHOM_TRY(runner_->synchronize());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  FATHOM_LOG(kInfo) << dir.string() << ": captured " << runner_->graph_count() << " CUDA graphs (token buckets "
                    << buckets_.front() << ".." << buckets_.back() << ", " << dtype_name(dtype_) << ") in "
                    << static_cast<int>(ms + 0.5) << " ms";
  return Status::Ok();
}

Result<BertEmbedder::Activations> BertEmbedder::replay_graph(const std::vector<std::vector<int32_t>>& sequences,
                                                             int bucket) {
  const int max_seqs = graph_max_seqs(bucket);
  const std::size_t ints = ops::graph_batch_ints(max_seqs, bucket);
  const std::size_t act = arena_bytes(bucket, max_seqs);
  // After the batch description: the token types of the bucket's rows (segments in use), one upload.
  const std::size_t desc_bytes = align64(ints * 4);
  const std::size_t types_bytes = uses_segments() ? static_cast<std::size_t>(bucket) * 4 : 0;
  FATHOM_TRY(ensure_graph_arena(act + desc_bytes + (types_bytes ? align64(types_bytes) : 0)));
  Activations a = carve(graph_arena_.data(), bucket, max_seqs);
  auto* desc = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(graph_arena_.data()) + act);
  auto* types_dev = reinterpret_cast<int32_t*>(reinterpret_cast<uint8_t*>(desc) + desc_bytes);
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_->staging(0, desc_bytes + types_bytes));
  if (head_) {  // the graph batch holds plain ids; segments go to their own rows
    std::vector<std::vector<int32_t>> plain(sequences.size());
    auto* types = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(stage) + desc_bytes);
    std::size_t k = 0;
    for (std::size_t s = 0; s < sequences.size(); ++s) {
      plain[s].reserve(sequences[s].size());
      for (int32_t packed : sequences[s]) {
        plain[s].push_back(unpack_id(packed));
        if (types_bytes) types[k] = unpack_segment(packed);
        ++k;
      }
    }
    if (types_bytes) std::fill(types + k, types + bucket, 0);
    FATHOM_TRY(ops::fill_graph_batch(max_seqs, bucket, plain, cfg_.position_offset(), cfg_.pad_token_id,
                                     static_cast<int32_t*>(stage)));
  } else {
    FATHOM_TRY(ops::fill_graph_batch(max_seqs, bucket, sequences, cfg_.position_offset(), cfg_.pad_token_id,
                                     static_cast<int32_t*>(stage)));
  }
  // Queued before the replay on the same stream.
  FATHOM_TRY(runner_->upload(desc, stage, desc_bytes + types_bytes));
  if (!runner_->has_graph(bucket)) {
    // The host side describes only the padded shape the graph is captured for ([bucket] rows, max_seqs
    // pooled rows); the kernels read the real batch from `desc` at run time.
    ops::VarlenBatch vb;
    vb.cu_seqlens.assign(static_cast<std::size_t>(max_seqs) + 1, bucket);
    vb.cu_seqlens[0] = 0;
    vb.max_seqlen = bucket;
    vb.cuda_desc = desc;
    vb.cuda_max_seqs = max_seqs;
    TensorView ids_d(desc + ops::graph_batch_ids_offset(max_seqs, bucket), DType::kI32, Shape{bucket}, device_);
    TensorView pos_d(desc + ops::graph_batch_positions_offset(max_seqs, bucket), DType::kI32, Shape{bucket}, device_);
    TensorView types_d(types_dev, DType::kI32, Shape{bucket}, device_);
    FATHOM_TRY(runner_->run_graph(bucket, [&] { return forward(ctx_, a, ids_d, pos_d, types_bytes ? &types_d : nullptr, vb); }));
  } else {
    FATHOM_TRY(runner_->run_graph(bucket, [] { return Status::Ok(); }));
  }
  return a;
}

// One graph per bucket over persistent buffers (the graph arena), captured at load.
Result<std::vector<float>> BertEmbedder::embed_graph(const std::vector<std::vector<int32_t>>& sequences, int bucket) {
  FATHOM_ASSIGN_OR_RETURN(Activations a, replay_graph(sequences, bucket));
  return finish(a, static_cast<int64_t>(sequences.size()));
}

}  // namespace

Result<std::unique_ptr<Model>> load_bert_family(const std::filesystem::path& dir, const nlohmann::json& config,
                                                const LoadOptions& options, const ModelInfo& info, bool roberta) {
  const std::string arch = config_architecture(config, info.name);
  const DType dtype = resolve_compute_dtype(config, options);
  FATHOM_TRY(prepare_compute(dir, info.name, dtype, options.device));
  auto model = std::make_unique<BertEmbedder>(info, arch, options.device, dtype, options.memory_budget);
  Status s = model->init(dir, config, roberta, is_sequence_classification(arch), options.cuda_graphs,
                         options.max_batch_tokens, runner_options(options));
  if (!s.ok()) return s.error();
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fathom::models::bert
