#pragma once
// BERT-family encoder + pooling driven directly through the CUDA backend's raw kernels. This is the GPU
// benchmark and parity harness for the backend (kernels, cuBLASLt epilogues, varlen metadata and
// per-bucket CUDA graphs) until the device-agnostic model in src/models/bert runs on CUDA tensors.
//
// Forward (post-LN BERT), activations row-major [bucket_tokens, *] in the compute dtype:
//   x = LN(word[id] + pos[p] + type[0])
//   per layer: qkv = x Wqkv^T + b;  a = attention(qkv);  t = a Wo^T + bo + x;  x = LN(t)
//              f = act(x W1^T + b1);  t = f W2^T + b2 + x;  x = LN(t)
//   pooled = pool(x) (f32), optionally L2-normalised.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cuda/allocator.h"
#include "backends/cuda/blas.h"
#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "backends/cuda/graph.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/varlen.h"
#include "base/half.h"
#include "safetensors_lite.h"

namespace fathom::benchgpu {

using cuda::Activation;
using cuda::PoolMode;

struct BertConfig {
  int layers = 0, hidden = 0, heads = 0, inter = 0, vocab = 0, max_pos = 0, type_vocab = 1;
  float eps = 1e-12f;
  int pos_offset = 0;  // RoBERTa family: padding_idx + 1
  int pad_id = 0;
  Activation act = Activation::kGeluErf;

  static BertConfig from_dir(const std::filesystem::path& dir) {
    std::ifstream f(dir / "config.json");
    auto j = nlohmann::json::parse(f);
    BertConfig c;
    c.layers = j["num_hidden_layers"];
    c.hidden = j["hidden_size"];
    c.heads = j["num_attention_heads"];
    c.inter = j["intermediate_size"];
    c.vocab = j["vocab_size"];
    c.max_pos = j["max_position_embeddings"];
    c.type_vocab = j.value("type_vocab_size", 1);
    c.eps = j.value("layer_norm_eps", 1e-12f);
    c.pad_id = j.value("pad_token_id", 0);
    std::string mt = j.value("model_type", "bert");
    if (mt == "roberta" || mt == "xlm-roberta" || mt == "camembert") c.pos_offset = c.pad_id + 1;
    std::string act = j.value("hidden_act", "gelu");
    c.act = (act == "gelu") ? Activation::kGeluErf : Activation::kGeluTanh;
    return c;
  }
};

inline PoolMode parse_pool(const std::string& s) {
  if (s == "cls") return PoolMode::kCls;
  if (s == "max") return PoolMode::kMax;
  if (s == "lasttoken" || s == "last") return PoolMode::kLast;
  return PoolMode::kMean;
}

class RawBert {
 public:
  RawBert(const std::filesystem::path& dir, DType dtype, int max_tokens, int max_seqs)
      : cfg_(BertConfig::from_dir(dir)),
        dtype_(dtype),
        max_tokens_(max_tokens),
        max_seqs_(max_seqs),
        stream_(0),
        pool_(0, 0, "raw-bert"),
        blas_(0),
        buckets_(cuda::token_buckets(max_tokens)) {
    Checkpoint ck(dir);
    const std::string p = ck.prefix();
    auto up = [&](const std::vector<float>& v) { return upload(v); };
    auto t = [&](const std::string& n) { return ck.get(p + n).to_f32(); };
    word_ = up(t("embeddings.word_embeddings.weight"));
    pos_ = up(t("embeddings.position_embeddings.weight"));
    type_ = up(t("embeddings.token_type_embeddings.weight"));
    eg_ = up(t("embeddings.LayerNorm.weight"));
    eb_ = up(t("embeddings.LayerNorm.bias"));
    for (int l = 0; l < cfg_.layers; ++l) {
      const std::string L = "encoder.layer." + std::to_string(l) + ".";
      Layer ly;
      auto cat = [](std::vector<float> a, const std::vector<float>& b, const std::vector<float>& c) {
        a.insert(a.end(), b.begin(), b.end());
        a.insert(a.end(), c.begin(), c.end());
        return a;
      };
      ly.wqkv = up(cat(t(L + "attention.self.query.weight"), t(L + "attention.self.key.weight"),
                       t(L + "attention.self.value.weight")));
      ly.bqkv = up(cat(t(L + "attention.self.query.bias"), t(L + "attention.self.key.bias"),
                       t(L + "attention.self.value.bias")));
      ly.wo = up(t(L + "attention.output.dense.weight"));
      ly.bo = up(t(L + "attention.output.dense.bias"));
      ly.g1 = up(t(L + "attention.output.LayerNorm.weight"));
      ly.b1n = up(t(L + "attention.output.LayerNorm.bias"));
      ly.w1 = up(t(L + "intermediate.dense.weight"));
      ly.b1 = up(t(L + "intermediate.dense.bias"));
      ly.w2 = up(t(L + "output.dense.weight"));
      ly.b2 = up(t(L + "output.dense.bias"));
      ly.g2 = up(t(L + "output.LayerNorm.weight"));
      ly.b2n = up(t(L + "output.LayerNorm.bias"));
      layers_.push_back(std::move(ly));
    }
    const std::size_t es = dtype_size(dtype_);
    const std::size_t T = static_cast<std::size_t>(max_tokens_);
    x_ = cuda::DeviceBuffer(pool_, T * cfg_.hidden * es);
    qkv_ = cuda::DeviceBuffer(pool_, T * 3 * cfg_.hidden * es);
    att_ = cuda::DeviceBuffer(pool_, T * cfg_.hidden * es);
    tmp_ = cuda::DeviceBuffer(pool_, T * cfg_.hidden * es);
    ff_ = cuda::DeviceBuffer(pool_, T * cfg_.inter * es);
    pooled_ = cuda::DeviceBuffer(pool_, static_cast<std::size_t>(max_seqs_) * cfg_.hidden * 4);
    cuda::VarlenLayout big{max_seqs_, max_tokens_};
    meta_ = cuda::DeviceBuffer(pool_, big.total_ints() * 4);
    host_meta_.ensure(big.total_ints() * 4);
    host_out_.ensure(static_cast<std::size_t>(max_seqs_) * cfg_.hidden * 4);
    FATHOM_CUDA_CHECK(cudaDeviceSynchronize());
  }

  const BertConfig& config() const { return cfg_; }
  std::size_t weight_bytes() const { return weight_bytes_; }
  cudaStream_t stream() const { return stream_.get(); }
  std::size_t graphs() const { return graphs_.size(); }
  const std::vector<int>& buckets() const { return buckets_; }

  // Embeds one batch (total tokens <= max_tokens, count <= max_seqs). Returns count * hidden floats.
  std::vector<float> embed(const std::vector<std::vector<int32_t>>& seqs, PoolMode mode, bool normalize,
                           bool use_graph) {
    std::size_t total = 0;
    for (auto& s : seqs) total += s.size();
    const int bucket = cuda::bucket_for(buckets_, static_cast<int>(total));
    if (bucket < 0) throw std::runtime_error("batch over the token budget");
    cuda::VarlenLayout layout{std::min(max_seqs_, bucket), bucket};
    cuda::fill_varlen(layout, seqs, cfg_.pos_offset, cfg_.pad_id, host_meta_.as<int32_t>());
    cudaStream_t s = stream_.get();
    FATHOM_CUDA_CHECK(cudaMemcpyAsync(meta_.get(), host_meta_.get(), layout.total_ints() * 4,
                                      cudaMemcpyHostToDevice, s));
    auto body = [&, layout, mode, normalize](cudaStream_t st) { forward(layout, mode, normalize, st); };
    if (use_graph) graphs_.run(bucket + (static_cast<int>(mode) << 24) + (normalize ? 1 << 28 : 0), s, body);
    else body(s);
    const std::size_t n = seqs.size() * cfg_.hidden;
    FATHOM_CUDA_CHECK(cudaMemcpyAsync(host_out_.get(), pooled_.get(), n * 4, cudaMemcpyDeviceToHost, s));
    stream_.synchronize();
    return std::vector<float>(host_out_.as<float>(), host_out_.as<float>() + n);
  }

 private:
  struct Layer {
    cuda::DeviceBuffer wqkv, bqkv, wo, bo, g1, b1n, w1, b1, w2, b2, g2, b2n;
  };

  cuda::DeviceBuffer upload(const std::vector<float>& v) {
    const std::size_t es = dtype_size(dtype_);
    cuda::DeviceBuffer staging(pool_, v.size() * 4);
    FATHOM_CUDA_CHECK(cudaMemcpy(staging.get(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
    cuda::DeviceBuffer out(pool_, v.size() * es);
    cuda::convert(DType::kF32, staging.get(), dtype_, out.get(), v.size(), nullptr);
    FATHOM_CUDA_CHECK(cudaDeviceSynchronize());
    weight_bytes_ += v.size() * es;
    return out;
  }

  void gemm(int m, int n, int k, const void* x, const void* w, const void* bias, const void* res, void* y,
            Activation act, cudaStream_t s) {
    cuda::GemmParams g;
    g.dtype = dtype_;
    g.m = m; g.n = n; g.k = k;
    g.x = x; g.ldx = k;
    g.w = w; g.ldw = k;
    g.bias = bias;
    g.residual = res; g.ldr = n;
    g.y = y; g.ldy = n;
    g.act = act;
    blas_.gemm(g, s);
  }

  void ln(int rows, const void* in, const void* g, const void* b, void* out, cudaStream_t s) {
    cuda::LayerNormParams p;
    p.dtype = dtype_;
    p.rows = rows; p.cols = cfg_.hidden;
    p.in = in; p.ld_in = cfg_.hidden;
    p.gamma = g; p.beta = b;
    p.out = out; p.ld_out = cfg_.hidden;
    p.eps = cfg_.eps;
    cuda::layer_norm(p, s);
  }

  void forward(const cuda::VarlenLayout& layout, PoolMode mode, bool normalize, cudaStream_t s) {
    const int T = layout.max_tokens, H = cfg_.hidden, I = cfg_.inter;
    const std::size_t es = dtype_size(dtype_);
    cuda::VarlenView batch = cuda::varlen_view(layout, meta_.as<int32_t>());
    cuda::EmbeddingParams e;
    e.dtype = dtype_;
    e.tokens = T; e.hidden = H;
    e.ids = batch.input_ids; e.position_ids = batch.position_ids; e.token_type_ids = batch.token_type_ids;
    e.word = word_.get(); e.vocab = cfg_.vocab;
    e.position = pos_.get(); e.max_positions = cfg_.max_pos;
    e.token_type = type_.get(); e.type_vocab = cfg_.type_vocab;
    e.gamma = eg_.get(); e.beta = eb_.get(); e.eps = cfg_.eps;
    e.out = x_.get();
    cuda::embedding_layer_norm(e, s);
    for (const Layer& ly : layers_) {
      gemm(T, 3 * H, H, x_.get(), ly.wqkv.get(), ly.bqkv.get(), nullptr, qkv_.get(), Activation::kNone, s);
      cuda::AttentionParams a;
      a.dtype = dtype_;
      a.num_heads = cfg_.heads; a.head_dim = H / cfg_.heads;
      a.q = qkv_.get();
      a.k = qkv_.as<char>() + H * es;
      a.v = qkv_.as<char>() + 2 * H * es;
      a.ld_qkv = 3 * H;
      a.out = att_.get(); a.ld_out = H;
      a.batch = batch;
      cuda::attention_varlen(a, s);
      gemm(T, H, H, att_.get(), ly.wo.get(), ly.bo.get(), x_.get(), tmp_.get(), Activation::kNone, s);
      ln(T, tmp_.get(), ly.g1.get(), ly.b1n.get(), x_.get(), s);
      gemm(T, I, H, x_.get(), ly.w1.get(), ly.b1.get(), nullptr, ff_.get(), cfg_.act, s);
      gemm(T, H, I, ff_.get(), ly.w2.get(), ly.b2.get(), x_.get(), tmp_.get(), Activation::kNone, s);
      ln(T, tmp_.get(), ly.g2.get(), ly.b2n.get(), x_.get(), s);
    }
    cuda::PoolParams pp;
    pp.dtype = dtype_;
    pp.mode = mode;
    pp.hidden = H;
    pp.in = x_.get(); pp.ld_in = H;
    pp.out = pooled_.as<float>();
    pp.normalize = normalize;
    pp.batch = batch;
    cuda::pool(pp, s);
  }

  BertConfig cfg_;
  DType dtype_;
  int max_tokens_, max_seqs_;
  cuda::Stream stream_;
  cuda::CachingAllocator pool_;
  cuda::BlasLt blas_;
  std::vector<int> buckets_;
  cuda::GraphCache graphs_;
  std::size_t weight_bytes_ = 0;
  cuda::DeviceBuffer word_, pos_, type_, eg_, eb_;
  std::vector<Layer> layers_;
  cuda::DeviceBuffer x_, qkv_, att_, tmp_, ff_, pooled_, meta_;
  cuda::PinnedBuffer host_meta_, host_out_;
};

}  // namespace fathom::benchgpu
