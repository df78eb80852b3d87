#include "models/decoder/decoder_lm.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include "formats/json_file.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/attention_paged.h"
#include "ops/common.h"
#include "ops/convert.h"
#include "ops/embedding.h"
#include "ops/gemm.h"
#include "ops/norm.h"
#include "ops/qk_norm_rope.h"
#include "ops/rows.h"

namespace fathom::models::decoder {
namespace {

constexpr std::size_t kAlign = 256;
std::size_t align_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

}  // namespace

// Byte offsets of one forward pass's inputs (uploaded together, first in the buffer) and activations.
struct DecoderLm::Layout {
  std::size_t ids = 0, positions = 0, slots = 0, last_rows = 0, seqs = 0, tables = 0, addresses = 0, embeds = 0,
              varlen = 0;
  std::size_t input_bytes = 0;
  std::size_t h = 0, x = 0, qkv = 0, attn = 0, tmp = 0, gate_up = 0, act = 0, last = 0, last_norm = 0, logits = 0,
              logits32 = 0, argmax = 0;
  std::size_t bytes = 0;
};

DecoderLm::Layout DecoderLm::layout_for(int64_t T, int64_t B, int64_t table_entries, int64_t E,
                                        std::size_t varlen_ints) const {
  const DecoderConfig& c = cfg_;
  const std::size_t es = dtype_size(w_->dtype);
  Layout L;
  std::size_t at = 0;
  auto take = [&](std::size_t bytes) {
    const std::size_t off = at;
    at += align_up(bytes);
    return off;
  };
  const auto t = static_cast<std::size_t>(T), b = static_cast<std::size_t>(B), e = static_cast<std::size_t>(E);
  const auto hidden = static_cast<std::size_t>(c.hidden_size), vocab = static_cast<std::size_t>(c.vocab_size);
  L.ids = take(t * 4);
  L.positions = take(t * 4);
  L.slots = take(t * 4);
  L.last_rows = take(b * 4);
  L.seqs = take(b * sizeof(ops::PagedSeq));
  L.tables = take(static_cast<std::size_t>(table_entries) * 4);
  L.addresses = take(e * 8);
  L.embeds = take(e * hidden * es);
  L.varlen = take(varlen_ints * 4);
  L.input_bytes = at;
  L.h = take(t * hidden * es);
  L.x = take(t * hidden * es);
  L.qkv = take(t * static_cast<std::size_t>(layout_.row_width()) * es);
  L.attn = take(t * static_cast<std::size_t>(layout_.q_width()) * es);
  L.tmp = take(t * hidden * es);
  L.gate_up = take(t * 2 * static_cast<std::size_t>(c.intermediate_size) * es);
  L.act = take(t * static_cast<std::size_t>(c.intermediate_size) * es);
  L.last = take(b * hidden * es);
  L.last_norm = take(b * hidden * es);
  L.logits = take(b * vocab * es);
  L.logits32 = take(b * vocab * 4);
  L.argmax = take(b * 4);
  L.bytes = at;
  return L;
}

DecoderLm::DecoderLm(DecoderConfig config, Device device, Allocator& allocator)
    : cfg_(std::move(config)),
      account_("decoder"),
      workspace_(allocator, &account_),
      arena_(allocator, &account_) {
  ctx_.device = device;
  ctx_.allocator = &allocator;
  ctx_.account = &account_;
  ctx_.workspace = &workspace_;
  layout_ = ops::QkvLayout{cfg_.num_attention_heads, cfg_.num_key_value_heads, cfg_.head_dim};
}

DecoderLm::~DecoderLm() {
  if (runner_) (void)runner_->synchronize();
  cache_ = PagedKvCache();
  graph_buffer_.reset();
  inv_freq_.reset();
  w_.reset();
  arena_.release();
  workspace_.release();
}

Result<std::unique_ptr<DecoderLm>> DecoderLm::load(const formats::Checkpoint& ckpt, const std::string& prefix,
                                                   const DecoderConfig& config, const DecoderLoadOptions& options) {
  if (options.device.kind != DeviceKind::kCpu && options.device.kind != DeviceKind::kCuda)
    return make_error(ErrorCode::kUnsupported, "the decoder runs on cpu or cuda; " + options.device.to_string() + " was requested");
  if (!ops::compute_supported(options.device.kind, options.dtype))
    return make_error(ErrorCode::kUnsupported, "the decoder cannot compute in " + std::string(dtype_name(options.dtype)) +
                                                   " on " + options.device.to_string() + " in this build" +
                                                   (options.device.kind == DeviceKind::kCpu ? " (cpu computes in float32)" : ""));
  if (Status dev = ops::prepare_device(options.device); !dev.ok()) return dev.error();
  Allocator* allocator = allocator_for(options.device);
  if (!allocator) return make_error(ErrorCode::kUnsupported, "no allocator for device " + options.device.to_string());
  FATHOM_ASSIGN_OR_RETURN(RopeTables rope, rope_tables(config.rope, config.head_dim, config.max_position_embeddings));

  std::unique_ptr<DecoderLm> m(new DecoderLm(config, options.device, *allocator));
  if (options.memory_budget) m->account_.set_budget(options.memory_budget);
  m->attn_scale_ = 1.0f / std::sqrt(static_cast<float>(config.head_dim));
  m->rope_scaling_ = rope.attention_scaling;
  FATHOM_ASSIGN_OR_RETURN(m->runner_, ops::DeviceRunner::create(options.device, options.runner));
  m->ctx_.stream = m->runner_->stream();
  FATHOM_ASSIGN_OR_RETURN(m->w_, load_decoder_weights(ckpt, prefix, config, *allocator, &m->account_, options.dtype));
  FATHOM_ASSIGN_OR_RETURN(m->inv_freq_, Buffer::allocate(*allocator, rope.inv_freq.size() * 4, &m->account_));
  FATHOM_TRY(allocator->copy_from_host(m->inv_freq_.data(), rope.inv_freq.data(), rope.inv_freq.size() * 4));
  KvCacheShape shape;
  shape.layers = config.num_hidden_layers;
  shape.kv_width = static_cast<int>(m->layout_.kv_width());
  shape.block_size = options.kv_block_size;
  shape.dtype = options.dtype;
  FATHOM_ASSIGN_OR_RETURN(m->cache_, PagedKvCache::create(*allocator, &m->account_, shape, options.kv_cache_bytes));
  if (options.cuda_graphs && m->runner_->graphs_supported() && options.max_graph_batch > 0) {
    for (int b = 1; b < options.max_graph_batch; b *= 2) m->buckets_.push_back(b);
    m->buckets_.push_back(options.max_graph_batch);
    m->graph_table_width_ = std::min(m->cache_.num_blocks(), m->cache_.blocks_for(config.max_position_embeddings));
    const int largest = m->buckets_.back();
    const Layout L = m->layout_for(largest, largest, int64_t{largest} * m->graph_table_width_, 0);
    FATHOM_ASSIGN_OR_RETURN(m->graph_buffer_, Buffer::allocate(*allocator, L.bytes, &m->account_));
  }
  return m;
}

Result<std::unique_ptr<DecoderLm>> DecoderLm::load_directory(const std::filesystem::path& dir,
                                                             const DecoderLoadOptions& options) {
  FATHOM_ASSIGN_OR_RETURN(nlohmann::json json, formats::read_json_file(dir / "config.json"));
  FATHOM_ASSIGN_OR_RETURN(DecoderConfig config, parse_decoder_config(json, dir / "config.json"));
  FATHOM_TRY(read_generation_config(dir, config));
  FATHOM_ASSIGN_OR_RETURN(formats::Checkpoint ckpt, formats::Checkpoint::open(dir));
  return load(ckpt, "", config, options);
}

int DecoderLm::blocks_needed(int sequence, int64_t new_positions) const {
  if (!cache_.valid(sequence)) return 0;
  const int64_t total = cache_.length(sequence) + new_positions;
  return std::max(0, cache_.blocks_for(total) - static_cast<int>(cache_.block_table(sequence).size()));
}

Result<std::vector<float>> DecoderLm::token_embeddings(std::span<const int32_t> ids) {
  const std::size_t hidden = static_cast<std::size_t>(cfg_.hidden_size), es = dtype_size(w_->dtype);
  for (int32_t id : ids)
    if (id < 0 || id >= cfg_.vocab_size)
      return make_error(ErrorCode::kInvalidArgument, "token id " + std::to_string(id) + " outside the vocabulary of " +
                                                         std::to_string(cfg_.vocab_size));
  std::vector<float> out(ids.size() * hidden);
  std::vector<unsigned char> row(hidden * es);
  const auto* table = static_cast<const unsigned char*>(w_->embed.data);
  CpuExecContext cpu;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    FATHOM_TRY(ctx_.allocator->copy_to_host(row.data(), table + static_cast<std::size_t>(ids[i]) * hidden * es, row.size()));
    FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(row.data(), w_->dtype, Shape{static_cast<int64_t>(hidden)}),
                            TensorView(out.data() + i * hidden, DType::kF32, Shape{static_cast<int64_t>(hidden)})));
  }
  return out;
}

Result<ForwardOutput> DecoderLm::forward(const std::vector<SequenceInput>& inputs, const ForwardOptions& options) {
  try {
    return forward_impl(inputs, options);
  } catch (const Exception& e) {
    return make_error(e.code(), e.what());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kInternal, std::string("decoder forward: ") + e.what());
  }
}

Result<ForwardOutput> DecoderLm::forward_impl(const std::vector<SequenceInput>& inputs, const ForwardOptions& options) {
  const int64_t hidden = cfg_.hidden_size, vocab = cfg_.vocab_size;
  const int64_t B = static_cast<int64_t>(inputs.size());
  if (B == 0) return make_error(ErrorCode::kInvalidArgument, "decoder forward: empty batch");
  const bool want_logits = options.logits || options.greedy_ids;
  if (want_logits && !has_lm_head())
    return make_error(ErrorCode::kUnsupported, "decoder forward: the checkpoint has no lm_head, logits are unavailable");
  // Validate and count.
  std::set<int> seen;
  std::vector<int64_t> counts(static_cast<std::size_t>(B), 0);
  int64_t T = 0, E = 0, table_entries = 0;
  int blocks = 0, max_q = 0;
  for (int64_t b = 0; b < B; ++b) {
    const SequenceInput& in = inputs[static_cast<std::size_t>(b)];
    if (!cache_.valid(in.sequence) || !seen.insert(in.sequence).second)
      return make_error(ErrorCode::kInvalidArgument, "decoder forward: input " + std::to_string(b) + " names sequence " +
                                                         std::to_string(in.sequence) + ", unknown or repeated");
    int64_t n = 0;
    for (const InputSpan& s : in.spans) {
      if (!s.ids.empty() && !s.embeddings.empty())
        return make_error(ErrorCode::kInvalidArgument, "decoder forward: a span holds both ids and embeddings");
      for (int32_t id : s.ids)
        if (id < 0 || id >= vocab)
          return make_error(ErrorCode::kInvalidArgument, "decoder forward: token id " + std::to_string(id) +
                                                             " outside the vocabulary of " + std::to_string(vocab));
      if (s.embeddings.size() % static_cast<std::size_t>(hidden) != 0)
        return make_error(ErrorCode::kInvalidArgument, "decoder forward: " + std::to_string(s.embeddings.size()) +
                                                           " embedding values are not rows of hidden_size " +
                                                           std::to_string(hidden));
      const int64_t rows = static_cast<int64_t>(s.embeddings.size()) / hidden;
      n += static_cast<int64_t>(s.ids.size()) + rows;
      E += rows;
    }
    if (n == 0)
      return make_error(ErrorCode::kInvalidArgument, "decoder forward: input " + std::to_string(b) + " has no new positions");
    const int64_t total = cache_.length(in.sequence) + n;
    if (total > cfg_.max_position_embeddings)
      return make_error(ErrorCode::kInvalidArgument, "decoder forward: sequence would reach " + std::to_string(total) +
                                                         " positions, over max_position_embeddings " +
                                                         std::to_string(cfg_.max_position_embeddings));
    counts[static_cast<std::size_t>(b)] = n;
    T += n;
    max_q = std::max<int>(max_q, static_cast<int>(n));
    blocks += blocks_needed(in.sequence, n);
    table_entries += cache_.blocks_for(total);
  }
  if (blocks > cache_.free_blocks())
    return make_error(ErrorCode::kOutOfMemory, "KV cache full: the batch needs " + std::to_string(blocks) +
                                                   " more blocks, " + std::to_string(cache_.free_blocks()) + " of " +
                                                   std::to_string(cache_.num_blocks()) + " are free");
  if (T > INT32_MAX / 2) return make_error(ErrorCode::kTooLarge, "decoder forward: too many tokens in one batch");
  for (int64_t b = 0; b < B; ++b) {
    const SequenceInput& in = inputs[static_cast<std::size_t>(b)];
    FATHOM_TRY(cache_.reserve(in.sequence, cache_.length(in.sequence) + counts[static_cast<std::size_t>(b)]));
  }

  const DType dt = w_->dtype;
  const std::size_t es = dtype_size(dt);
  // Decode steps (one token id per sequence) replay the graph of their batch bucket; the rest runs eagerly.
  const int bucket = !buckets_.empty() && E == 0 && max_q == 1 ? ops::graph_bucket_for(buckets_, static_cast<int>(B)) : -1;
  const bool graph = bucket > 0;
  const int64_t rows = graph ? bucket : T, nseq = graph ? bucket : B;
  const int64_t entries = graph ? static_cast<int64_t>(bucket) * graph_table_width_ : table_entries;
  // Sequences that start empty (fresh prefills) are packed first and attend over their own new rows (causal
  // varlen attention; on CUDA its batch description travels with the inputs); the rest read the paged cache.
  std::vector<int64_t> order(static_cast<std::size_t>(B));  // packing order: fresh sequences first, else input order
  std::iota(order.begin(), order.end(), int64_t{0});
  int64_t fresh = 0;
  if (!graph && causal_prefill_supported())
    fresh = std::stable_partition(order.begin(), order.end(),
                                  [&](int64_t b) { return cache_.length(inputs[static_cast<std::size_t>(b)].sequence) == 0; }) -
            order.begin();
  ops::VarlenBatch prefill;
  std::size_t varlen_ints = 0;
  int paged_max_q = 0;
  for (int64_t i = fresh; i < B; ++i)
    paged_max_q = std::max<int>(paged_max_q, static_cast<int>(counts[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])]));
  if (fresh > 0) {
    prefill.cu_seqlens.assign(1, 0);
    for (int64_t i = 0; i < fresh; ++i) {
      const int64_t n = counts[static_cast<std::size_t>(order[static_cast<std::size_t>(i)])];
      prefill.cu_seqlens.push_back(prefill.cu_seqlens.back() + static_cast<int32_t>(n));
      prefill.max_seqlen = std::max<int>(prefill.max_seqlen, static_cast<int>(n));
    }
    if (ctx_.device.kind == DeviceKind::kCuda)
      varlen_ints = ops::graph_batch_meta_ints(static_cast<int>(fresh), prefill.cu_seqlens.back());
  }
  const Layout L = layout_for(rows, nseq, entries, E, varlen_ints);
  unsigned char* base = nullptr;
  if (graph) {
    base = static_cast<unsigned char*>(graph_buffer_.data());
  } else {
    FATHOM_ASSIGN_OR_RETURN(void* arena_ptr, arena_.get(L.bytes));
    base = static_cast<unsigned char*>(arena_ptr);
  }

  // Host side of the inputs, laid out as on the device.
  FATHOM_ASSIGN_OR_RETURN(void* staging, runner_->staging(0, L.input_bytes));
  auto* host = static_cast<unsigned char*>(staging);
  auto* ids = reinterpret_cast<int32_t*>(host + L.ids);
  auto* positions = reinterpret_cast<int32_t*>(host + L.positions);
  auto* slots = reinterpret_cast<int32_t*>(host + L.slots);
  auto* last_rows = reinterpret_cast<int32_t*>(host + L.last_rows);
  auto* seqs = reinterpret_cast<ops::PagedSeq*>(host + L.seqs);
  auto* tables = reinterpret_cast<int32_t*>(host + L.tables);
  auto* addresses = reinterpret_cast<int64_t*>(host + L.addresses);
  unsigned char* embeds = host + L.embeds;
  CpuExecContext cpu;
  int64_t row = 0, erow = 0, toff = 0;
  for (int64_t i = 0; i < B; ++i) {  // descriptor i is the i-th sequence in packing order
    const int64_t b = order[static_cast<std::size_t>(i)];
    const SequenceInput& in = inputs[static_cast<std::size_t>(b)];
    const int64_t start = cache_.length(in.sequence), n = counts[static_cast<std::size_t>(b)];
    if (graph) toff = i * graph_table_width_;
    seqs[i] = ops::PagedSeq{static_cast<int32_t>(row), static_cast<int32_t>(n), static_cast<int32_t>(start + n),
                            static_cast<int32_t>(toff)};
    const auto& table = cache_.block_table(in.sequence);
    const int used = cache_.blocks_for(start + n);
    std::copy(table.begin(), table.begin() + used, tables + toff);
    toff += used;
    int64_t p = start;
    for (const InputSpan& s : in.spans) {
      for (int32_t id : s.ids) {
        ids[row] = id;
        positions[row] = static_cast<int32_t>(p);
        slots[row] = cache_.slot(in.sequence, p);
        ++row, ++p;
      }
      const int64_t n_rows = static_cast<int64_t>(s.embeddings.size()) / hidden;
      if (n_rows) {
        FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(s.embeddings.data(), DType::kF32, Shape{n_rows * hidden}),
                                TensorView(embeds + static_cast<std::size_t>(erow * hidden) * es, dt, Shape{n_rows * hidden})));
      }
      for (int64_t r = 0; r < n_rows; ++r) {
        ids[row] = 0;  // overwritten by the embedding row
        positions[row] = static_cast<int32_t>(p);
        slots[row] = cache_.slot(in.sequence, p);
        addresses[erow] = reinterpret_cast<int64_t>(base + L.h + static_cast<std::size_t>(row * hidden) * es);
        ++row, ++p, ++erow;
      }
    }
    last_rows[b] = static_cast<int32_t>(row - 1);
  }
  for (int64_t b = B; b < nseq; ++b) {  // graph padding: a row that writes no cache slot and attends to nothing
    ids[row] = 0;
    positions[row] = 0;
    slots[row] = -1;
    seqs[b] = ops::PagedSeq{static_cast<int32_t>(row), 0, 0, static_cast<int32_t>(b * graph_table_width_)};
    last_rows[b] = static_cast<int32_t>(row);
    ++row;
  }
  if (varlen_ints) {
    FATHOM_TRY(ops::fill_graph_batch_meta(static_cast<int>(fresh), prefill.cu_seqlens.back(), prefill.cu_seqlens.data(),
                                          static_cast<int>(fresh), reinterpret_cast<int32_t*>(host + L.varlen)));
    prefill.cuda_desc = reinterpret_cast<const int32_t*>(base + L.varlen);
    prefill.cuda_max_seqs = static_cast<int>(fresh);
  }
  FATHOM_TRY(runner_->upload(base, host, L.input_bytes));
  if (graph) {
    FATHOM_TRY(runner_->run_graph(bucket, [&] { return body(base, L, rows, nseq, 1, entries, 0, true, nullptr); }));
  } else {
    FATHOM_TRY(body(base, L, T, B, paged_max_q, table_entries, E, want_logits, fresh > 0 ? &prefill : nullptr));
  }
  ForwardOutput out;
  if (options.logits) {
    logits_host_.resize(static_cast<std::size_t>(B * vocab));
    FATHOM_TRY(runner_->download(logits_host_.data(), base + (dt == DType::kF32 ? L.logits : L.logits32),
                                 logits_host_.size() * 4));
  }
  if (options.greedy_ids) {
    greedy_host_.resize(static_cast<std::size_t>(B));
    FATHOM_TRY(runner_->download(greedy_host_.data(), base + L.argmax, greedy_host_.size() * 4));
  }
  std::vector<unsigned char> hidden_raw;
  if (options.last_hidden) {
    hidden_raw.resize(static_cast<std::size_t>(B * hidden) * es);
    FATHOM_TRY(runner_->download(hidden_raw.data(), base + L.last_norm, hidden_raw.size()));
  }
  FATHOM_TRY(runner_->synchronize());
  for (int64_t b = 0; b < B; ++b) {
    const int seq = inputs[static_cast<std::size_t>(b)].sequence;
    cache_.set_length(seq, cache_.length(seq) + counts[static_cast<std::size_t>(b)]);
  }
  if (options.logits) out.logits = std::span<const float>(logits_host_.data(), logits_host_.size());
  if (options.greedy_ids) out.greedy_ids = std::span<const int32_t>(greedy_host_.data(), greedy_host_.size());
  if (options.last_hidden) {
    hidden_host_.resize(static_cast<std::size_t>(B * hidden));
    FATHOM_TRY(ops::convert(cpu.ctx(), TensorView(hidden_raw.data(), dt, Shape{B * hidden}),
                            TensorView(hidden_host_.data(), DType::kF32, Shape{B * hidden})));
    out.last_hidden = std::span<const float>(hidden_host_.data(), hidden_host_.size());
  }
  return out;
}

bool DecoderLm::causal_prefill_supported() const {
  return ctx_.device.kind == DeviceKind::kCpu || (ctx_.device.kind == DeviceKind::kCuda && cfg_.head_dim <= 128);
}

Status DecoderLm::body(unsigned char* base, const Layout& L, int64_t T, int64_t B, int max_q, int64_t table_entries,
                       int64_t E, bool logits, const ops::VarlenBatch* fresh) {
  const int64_t hidden = cfg_.hidden_size, vocab = cfg_.vocab_size;
  const DType dt = w_->dtype;
  auto view = [&](std::size_t off, DType t, Shape s) { return TensorView(base + off, t, s, ctx_.device); };
  const TensorView h = view(L.h, dt, Shape{T, hidden});
  const TensorView x = view(L.x, dt, Shape{T, hidden});
  const TensorView qkv = view(L.qkv, dt, Shape{T, layout_.row_width()});
  const TensorView attn = view(L.attn, dt, Shape{T, layout_.q_width()});
  const TensorView tmp = view(L.tmp, dt, Shape{T, hidden});
  const TensorView gate_up = view(L.gate_up, dt, Shape{T, 2 * static_cast<int64_t>(cfg_.intermediate_size)});
  const TensorView act = view(L.act, dt, Shape{T, cfg_.intermediate_size});
  const TensorView ids_v = view(L.ids, DType::kI32, Shape{T});
  const TensorView pos_v = view(L.positions, DType::kI32, Shape{T});
  const TensorView slots_v = view(L.slots, DType::kI32, Shape{T});
  const TensorView inv_freq(inv_freq_.data(), DType::kF32, Shape{cfg_.head_dim / 2}, ctx_.device);
  // Embeddings: token rows gathered, precomputed rows scattered over them.
  FATHOM_TRY(ops::embed_tokens(ctx_, ids_v, nullptr, nullptr, ops::EmbeddingTables{w_->embed}, h));
  if (E > 0)
    FATHOM_TRY(ops::scatter_rows(ctx_, view(L.embeds, dt, Shape{E, hidden}), view(L.addresses, DType::kI64, Shape{E})));
  const auto* dev_seqs = reinterpret_cast<const ops::PagedSeq*>(base + L.seqs);
  const auto* dev_tables = reinterpret_cast<const int32_t*>(base + L.tables);
  // The paged attention covers the descriptors after the fresh ones.
  const int fresh_seqs = fresh ? fresh->batch() : 0;
  const int64_t paged = B - fresh_seqs;
  const ops::PagedAttentionBounds bounds{static_cast<int>(paged), max_q, static_cast<int>(T), cache_.block_size()};
  const int64_t fresh_rows = fresh ? fresh->total() : 0;
  const TensorView qkv_fresh = view(L.qkv, dt, Shape{fresh_rows, layout_.row_width()});
  const TensorView attn_fresh = view(L.attn, dt, Shape{fresh_rows, layout_.q_width()});
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    const DecoderLayerWeights& w = w_->layers[static_cast<std::size_t>(l)];
    const TensorView k_pool = cache_.pool(l, 0), v_pool = cache_.pool(l, 1);
    FATHOM_TRY(ops::rms_norm(ctx_, h, w.input_norm, eps, x));
    FATHOM_TRY(ops::linear(ctx_, x, w.qkv, w.qkv_bias.data ? &w.qkv_bias : nullptr, qkv));
    FATHOM_TRY(ops::qk_norm_rope(ctx_, qkv, layout_, pos_v, inv_freq, rope_scaling_, w.q_norm.data ? &w.q_norm : nullptr,
                                 w.k_norm.data ? &w.k_norm : nullptr, eps));
    FATHOM_TRY(ops::paged_kv_write(ctx_, qkv, layout_, slots_v, k_pool, v_pool));
    if (fresh) FATHOM_TRY(ops::attention_varlen_causal(ctx_, qkv_fresh, layout_, *fresh, attn_scale_, attn_fresh));
    if (paged > 0)
      FATHOM_TRY(ops::attention_paged(ctx_, qkv, layout_, dev_seqs + fresh_seqs, dev_tables,
                                      static_cast<int>(table_entries), bounds, k_pool, v_pool, attn_scale_, attn));
    FATHOM_TRY(ops::linear(ctx_, attn, w.o, nullptr, tmp));
    FATHOM_TRY(ops::add(ctx_, h, tmp, h));
    FATHOM_TRY(ops::rms_norm(ctx_, h, w.post_norm, eps, x));
    FATHOM_TRY(ops::linear(ctx_, x, w.gate_up, nullptr, gate_up));
    FATHOM_TRY(ops::silu_mul(ctx_, gate_up, act));
    FATHOM_TRY(ops::linear(ctx_, act, w.down, nullptr, tmp));
    FATHOM_TRY(ops::add(ctx_, h, tmp, h));
  }
  // Last new position of every sequence (a row gather through the embedding op), final norm, lm_head.
  const TensorView last = view(L.last, dt, Shape{B, hidden});
  const TensorView last_norm = view(L.last_norm, dt, Shape{B, hidden});
  FATHOM_TRY(ops::embed_tokens(ctx_, view(L.last_rows, DType::kI32, Shape{B}), nullptr, nullptr, ops::EmbeddingTables{h}, last));
  FATHOM_TRY(ops::rms_norm(ctx_, last, w_->final_norm, eps, last_norm));
  if (logits) {
    const TensorView lg = view(L.logits, dt, Shape{B, vocab});
    FATHOM_TRY(ops::linear(ctx_, last_norm, w_->lm_head, nullptr, lg));
    const TensorView lg32 = dt == DType::kF32 ? lg : view(L.logits32, DType::kF32, Shape{B, vocab});
    if (dt != DType::kF32) FATHOM_TRY(ops::convert(ctx_, lg, lg32));
    FATHOM_TRY(ops::argmax_rows(ctx_, lg32, view(L.argmax, DType::kI32, Shape{B})));
  }
  return Status::Ok();
}

}  // namespace fathom::models::decoder
