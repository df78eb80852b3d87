#include "models/encoder/encoder_embedder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "base/log.h"
#include "formats/safetensors.h"
#include "formats/sentence_transformers.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/encoder/encoder_forward.h"
#include "models/input_checks.h"
#include "models/matryoshka.h"
#include "ops/convert.h"
#include "ops/device_runner.h"
#include "ops/pooling.h"

namespace fathom::models::encoder {
namespace {

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

class EncoderEmbedder final : public Model, public Embedder, public Classifier {
 public:
  EncoderEmbedder(ModelInfo info, std::string architecture, Device device, DType dtype, std::size_t budget)
      : info_(std::move(info)), architecture_(std::move(architecture)), device_(device), dtype_(dtype),
        account_(std::make_unique<MemoryAccount>(architecture_, budget)) {}
  ~EncoderEmbedder() override {
    if (runner_) (void)runner_->synchronize();
    runner_.reset();  // graphs go before the arena they point into
    graph_arena_.reset();
  }

  Status init(const std::filesystem::path& dir, const nlohmann::json& config, EncoderSpec spec,
              const WeightsFn& load_weights, bool graphs,
              int max_batch_tokens, const ops::RunnerOptions& runner_options) {
    spec_ = std::move(spec);
    FATHOM_ASSIGN_OR_RETURN(auto st, formats::read_sentence_transformers_config(dir));
    pooling_ = to_op(st.pooling);
    normalize_ = st.normalize;
    if (spec_.classifier) {
      pooling_ = spec_.classifier->pooling;  // config.json decides the row the head reads
      normalize_ = false;
      narrow_classifier_tasks(info_, spec_.classifier->labels);
    }
    if (!spec_.classifier && st.pooling_dimension && *st.pooling_dimension != spec_.hidden)
      return make_error(ErrorCode::kLoadFailed, st.pooling_source + ": embedding dimension " +
                                                    std::to_string(*st.pooling_dimension) + " differs from the hidden size " +
                                                    std::to_string(spec_.hidden) + " of " + (dir / "config.json").string());
    FATHOM_ASSIGN_OR_RETURN(matryoshka_, parse_matryoshka(config, dir / "config.json", spec_.hidden));
    FATHOM_ASSIGN_OR_RETURN(auto tok_max, formats::read_tokenizer_max_length(dir));
    max_tokens_ = formats::resolve_max_input_tokens(st.max_seq_length, tok_max, spec_.position_limit);

    allocator_ = allocator_for(device_);
    if (!allocator_)
      return make_error(ErrorCode::kUnsupported, "no allocator for device " + device_.to_string() + " in this build");
    FATHOM_ASSIGN_OR_RETURN(tokenizer_, formats::Tokenizer::load(dir / "tokenizer.json"));
    if (tokenizer_->vocab_size() > spec_.vocab)
      FATHOM_LOG(kWarn) << dir.string() << ": tokenizer has " << tokenizer_->vocab_size()
                        << " ids but the model's vocabulary has " << spec_.vocab;

    FATHOM_ASSIGN_OR_RETURN(auto ckpt, formats::Checkpoint::open(dir));
    loader_ = std::make_unique<WeightLoader>(ckpt, *allocator_, account_.get(), dtype_);
    FATHOM_TRY(load_weights(*loader_, spec_, weights_));
    FATHOM_TRY(check_network(spec_, weights_));

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
  Embedder* as_embedder() override { return spec_.classifier ? nullptr : this; }
  Classifier* as_classifier() override { return spec_.classifier ? this : nullptr; }
  bool runs_concurrently() const override { return runner_ && runner_->concurrent(); }

  // Embedder
  const formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  int max_input_tokens() const override { return max_tokens_; }
  int embedding_dim() const override { return spec_.hidden; }
  bool supports_matryoshka() const override { return !spec_.classifier && matryoshka_.supported(); }
  std::vector<int> matryoshka_dimensions() const override {
    return spec_.classifier ? std::vector<int>{} : matryoshka_.list(spec_.hidden);
  }
  bool normalizes_by_default() const override { return normalize_; }
  Result<std::vector<float>> embed(const std::vector<std::vector<int32_t>>& sequences) override;

  // Classifier
  std::vector<std::string> labels() const override {
    return spec_.classifier ? spec_.classifier->labels.labels : std::vector<std::string>();
  }
  ScoreActivation activation() const override {
    return spec_.classifier ? spec_.classifier->labels.activation : ScoreActivation::kIdentity;
  }
  Result<std::vector<float>> classify(const std::vector<std::vector<int32_t>>& sequences) override;

 private:
  // Rows out of one forward pass: the pooled embedding, or the head's logits.
  int64_t out_dim() const {
    return spec_.classifier ? static_cast<int64_t>(spec_.classifier->labels.labels.size()) : spec_.hidden;
  }
  // Shared by embed() and classify(): checks plain token ids and runs the batch (graph or eager).
  Result<std::vector<float>> run(const std::vector<std::vector<int32_t>>& sequences);
  static constexpr int kGraphMaxSeqs = 1024;  // larger batches run eagerly
  std::size_t arena_bytes(int64_t t, int64_t batch) const;
  Activations carve(void* arena, int64_t t, int64_t batch) const;
  Status forward(ExecContext& ctx, const Activations& a, const TensorView& ids, const TensorView& pos,
                 const ops::VarlenBatch& vb);
  Result<std::vector<float>> finish(const Activations& a, int64_t batch);
  Result<std::vector<float>> embed_eager(const std::vector<std::vector<int32_t>>& sequences,
                                         const std::vector<int>& lengths);
  Result<Activations> replay_graph(const std::vector<std::vector<int32_t>>& sequences, int bucket);
  Result<bool> ensure_full_graph_arena();
  Status ensure_graph_arena(std::size_t need);
  Status capture_all_buckets(const std::filesystem::path& dir);
  int graph_max_seqs(int bucket) const { return std::min(bucket, kGraphMaxSeqs); }
  std::size_t graph_arena_bytes(int bucket) const {
    const int max_seqs = graph_max_seqs(bucket);
    return arena_bytes(bucket, max_seqs) + align64(ops::graph_batch_ints(max_seqs, bucket) * 4);
  }

  ModelInfo info_;
  std::string architecture_;
  Device device_;
  DType dtype_;
  std::unique_ptr<MemoryAccount> account_;
  Allocator* allocator_ = nullptr;
  std::unique_ptr<WeightLoader> loader_;  // owns the weights (its checkpoint is used only during init)
  std::unique_ptr<Workspace> scratch_;
  std::unique_ptr<Workspace> activations_;
  ExecContext ctx_;
  std::unique_ptr<ops::DeviceRunner> runner_;
  bool use_graphs_ = false;
  std::vector<int> buckets_;
  Buffer graph_arena_;

  EncoderSpec spec_;
  EncoderWeights weights_;
  ops::PoolingMode pooling_ = ops::PoolingMode::kMean;
  bool normalize_ = false;
  MatryoshkaDims matryoshka_;  // config.json's declaration (embedders only)
  int max_tokens_ = 0;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
};

Result<std::vector<float>> EncoderEmbedder::embed(const std::vector<std::vector<int32_t>>& sequences) {
  if (spec_.classifier) return make_error(ErrorCode::kUnsupported, architecture_ + " is a classifier, not an embedding model");
  return run(sequences);
}

Result<std::vector<float>> EncoderEmbedder::classify(const std::vector<std::vector<int32_t>>& sequences) {
  if (!spec_.classifier) return make_error(ErrorCode::kUnsupported, architecture_ + " has no classification head");
  // These encoders have no token types: a pair is [CLS] A [SEP] B [SEP] from the tokenizer's template, so the
  // segment of each packed id is dropped.
  std::vector<std::vector<int32_t>> plain(sequences.size());
  for (std::size_t s = 0; s < sequences.size(); ++s) {
    plain[s].reserve(sequences[s].size());
    for (int32_t packed : sequences[s]) {
      if (packed < 0)
        return make_error(ErrorCode::kInvalidArgument, "input " + std::to_string(s) + ": packed token " +
                                                           std::to_string(packed) + " is negative");
      plain[s].push_back(unpack_id(packed));
    }
  }
  return run(plain);
}

Result<std::vector<float>> EncoderEmbedder::run(const std::vector<std::vector<int32_t>>& sequences) {
  const int64_t batch = static_cast<int64_t>(sequences.size());
  if (batch == 0) return std::vector<float>();
  FATHOM_TRY(check_token_sequences(sequences, max_tokens_, spec_.vocab));
  std::vector<int> lengths;
  lengths.reserve(sequences.size());
  for (const auto& seq : sequences) {
    lengths.push_back(static_cast<int>(seq.size()));
  }
  if (use_graphs_) {
    int64_t t = 0;
    for (int len : lengths) t += len;
    const int bucket = ops::graph_bucket_for(buckets_, static_cast<int>(t));
    if (bucket > 0 && batch <= graph_max_seqs(bucket)) {
      FATHOM_ASSIGN_OR_RETURN(Activations a, replay_graph(sequences, bucket));
      return finish(a, batch);
    }
  }
  return embed_eager(sequences, lengths);
}

std::size_t EncoderEmbedder::arena_bytes(int64_t t, int64_t batch) const {
  return activation_bytes(spec_, dtype_, t, batch);
}

Activations EncoderEmbedder::carve(void* arena, int64_t t, int64_t batch) const {
  return carve_activations(spec_, dtype_, device_, arena, t, batch);
}

Status EncoderEmbedder::forward(ExecContext& ctx, const Activations& a, const TensorView& ids, const TensorView& pos,
                                const ops::VarlenBatch& vb) {
  FATHOM_TRY(encoder_forward(ctx, spec_, weights_, a, ids, pos, vb, pooling_));
  if (dtype_ == DType::kF32) return Status::Ok();
  // 16-bit compute: embeddings and logits leave as f32.
  return spec_.classifier ? ops::convert(ctx, a.logits, a.logits32) : ops::convert(ctx, a.pooled, a.pooled32);
}

Result<std::vector<float>> EncoderEmbedder::finish(const Activations& a, int64_t batch) {
  const std::size_t n = static_cast<std::size_t>(batch * out_dim());
  const TensorView& pooled = spec_.classifier ? (dtype_ == DType::kF32 ? a.logits : a.logits32)
                                              : (dtype_ == DType::kF32 ? a.pooled : a.pooled32);
  FATHOM_ASSIGN_OR_RETURN(void* host, runner_->staging(1, n * sizeof(float)));
  FATHOM_TRY(runner_->download(host, pooled.data, n * sizeof(float)));
  FATHOM_TRY(runner_->synchronize());
  const float* f = static_cast<const float*>(host);
  return std::vector<float>(f, f + n);
}

Result<std::vector<float>> EncoderEmbedder::embed_eager(const std::vector<std::vector<int32_t>>& sequences,
                                                        const std::vector<int>& lengths) {
  const int64_t batch = static_cast<int64_t>(sequences.size());
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(lengths);
  const int64_t t = vb.total();
  // Arena: activations, then ids, positions and cu_seqlens (int32), uploaded in one copy.
  const std::size_t act = arena_bytes(t, batch);
  const std::size_t ids_bytes = align64(t * 4), cu_bytes = align64((batch + 1) * 4);
  const std::size_t upload_bytes = 2 * ids_bytes + cu_bytes;
  FATHOM_ASSIGN_OR_RETURN(void* arena, activations_->get(act + upload_bytes));
  Activations a = carve(arena, t, batch);
  auto* p = static_cast<uint8_t*>(arena) + act;
  TensorView ids_d(p, DType::kI32, Shape{t}, device_);
  TensorView pos_d(p + ids_bytes, DType::kI32, Shape{t}, device_);
  vb.cu_seqlens_device = TensorView(p + 2 * ids_bytes, DType::kI32, Shape{batch + 1}, device_);
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_->staging(0, upload_bytes));
  auto* host = static_cast<uint8_t*>(stage);
  auto* ids = reinterpret_cast<int32_t*>(host);
  auto* pos = reinterpret_cast<int32_t*>(host + ids_bytes);
  for (std::size_t s = 0, k = 0; s < sequences.size(); ++s)
    for (std::size_t i = 0; i < sequences[s].size(); ++i, ++k) {
      ids[k] = sequences[s][i];
      pos[k] = static_cast<int32_t>(i) + spec_.position_offset;
    }
  std::memcpy(host + 2 * ids_bytes, vb.cu_seqlens.data(), vb.cu_seqlens.size() * 4);
  FATHOM_TRY(runner_->upload(p, host, upload_bytes));
  FATHOM_TRY(forward(ctx_, a, ids_d, pos_d, vb));
  return finish(a, batch);
}

// One arena for every graph (activations + batch description of the largest bucket).
Status EncoderEmbedder::ensure_graph_arena(std::size_t need) {
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

Result<bool> EncoderEmbedder::ensure_full_graph_arena() {
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

Status EncoderEmbedder::capture_all_buckets(const std::filesystem::path& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  FATHOM_ASSIGN_OR_RETURN(bool full, ensure_full_graph_arena());
  if (!full) {
    FATHOM_LOG(kWarn) << dir.string() << ": no room for the CUDA graph arena of " << buckets_.back()
                      << " tokens within the memory budget; graphs are captured per bucket on first use";
    return Status::Ok();
  }
  // A stand-in batch per bucket: the graph depends only on the bucket.
  const int32_t id = spec_.pad_id >= 0 && spec_.pad_id < spec_.vocab ? spec_.pad_id : 0;
  for (int bucket : buckets_) {
    const int per_seq = std::max(1, std::min(bucket, max_tokens_));
    const int count = std::min(graph_max_seqs(bucket), (bucket + per_seq - 1) / per_seq);
    std::vector<std::vector<int32_t>> seqs;
    for (int i = 0, left = bucket; i < count && left > 0; ++i, left -= per_seq) seqs.emplace_back(std::min(per_seq, left), id);
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

Result<Activations> EncoderEmbedder::replay_graph(const std::vector<std::vector<int32_t>>& sequences, int bucket) {
  const int max_seqs = graph_max_seqs(bucket);
  const std::size_t ints = ops::graph_batch_ints(max_seqs, bucket);
  const std::size_t act = arena_bytes(bucket, max_seqs);
  const std::size_t desc_bytes = align64(ints * 4);
  FATHOM_TRY(ensure_graph_arena(act + desc_bytes));
  Activations a = carve(graph_arena_.data(), bucket, max_seqs);
  auto* desc = reinterpret_cast<int32_t*>(static_cast<uint8_t*>(graph_arena_.data()) + act);
  FATHOM_ASSIGN_OR_RETURN(void* stage, runner_->staging(0, desc_bytes));
  FATHOM_TRY(ops::fill_graph_batch(max_seqs, bucket, sequences, spec_.position_offset, spec_.pad_id,
                                   static_cast<int32_t*>(stage)));
  FATHOM_TRY(runner_->upload(desc, stage, desc_bytes));  // queued before the replay on the same stream
  if (!runner_->has_graph(bucket)) {
    // The host side describes only the padded shape the graph is captured for; kernels read the real
    // batch from `desc` at run time.
    ops::VarlenBatch vb;
    vb.cu_seqlens.assign(static_cast<std::size_t>(max_seqs) + 1, bucket);
    vb.cu_seqlens[0] = 0;
    vb.max_seqlen = bucket;
    vb.cuda_desc = desc;
    vb.cuda_max_seqs = max_seqs;
    TensorView ids_d(desc + ops::graph_batch_ids_offset(max_seqs, bucket), DType::kI32, Shape{bucket}, device_);
    TensorView pos_d(desc + ops::graph_batch_positions_offset(max_seqs, bucket), DType::kI32, Shape{bucket}, device_);
    FATHOM_TRY(runner_->run_graph(bucket, [&] { return forward(ctx_, a, ids_d, pos_d, vb); }));
  } else {
    FATHOM_TRY(runner_->run_graph(bucket, [] { return Status::Ok(); }));
  }
  return a;
}

}  // namespace

ModelInfo encoder_model_info(std::string name, std::vector<std::string> hf_architectures,
                             std::vector<std::string> model_types, std::vector<Task> tasks) {
  ModelInfo info;
  info.name = std::move(name);
  info.hf_architectures = std::move(hf_architectures);
  info.model_types = std::move(model_types);
  info.tasks = std::move(tasks);
  set_build_devices(info, /*cuda_graphs=*/true);
  return info;
}

Result<std::unique_ptr<Model>> load_encoder(const std::filesystem::path& dir, const nlohmann::json& config,
                                            const LoadOptions& options, const ModelInfo& info, EncoderSpec spec,
                                            const WeightsFn& load_weights) {
  const std::string arch = config_architecture(config, info.name);
  const DType dtype = resolve_compute_dtype(config, options);
  FATHOM_TRY(prepare_compute(dir, info.name, dtype, options.device));
  auto model = std::make_unique<EncoderEmbedder>(info, arch, options.device, dtype, options.memory_budget);
  Status s = model->init(dir, config, std::move(spec), load_weights, options.cuda_graphs, options.max_batch_tokens,
                         runner_options(options));
  if (!s.ok()) return s.error();
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace fathom::models::encoder
