#include "backends/cuda/ops_cuda.h"

#include <cuda_runtime_api.h>

#include <vector>

#include "backends/cuda/blas.h"
#include "backends/cuda/check.h"
#include "backends/cuda/context.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/varlen.h"

namespace fathom::cuda::ops {
namespace {

cudaStream_t stream_of(const ExecContext& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

// The device batch description: the model's persistent one, or one built in the workspace.
Result<VarlenView> batch_view(ExecContext& ctx, const int32_t* cu, int batch, const int32_t* desc, int desc_max_seqs) {
  const int total = cu[batch];
  if (desc) return varlen_view(VarlenLayout{desc_max_seqs, total}, desc);
  VarlenLayout layout{batch > 0 ? batch : 1, total};
  std::vector<int32_t> host(layout.total_ints(), 0);
  fill_varlen_meta(layout, cu, batch, host.data());
  if (!ctx.workspace) return make_error(ErrorCode::kInvalidArgument, "CUDA varlen op: ExecContext has no workspace");
  FATHOM_ASSIGN_OR_RETURN(void* dev, ctx.workspace->get(host.size() * 4));
  // Pageable source: the call returns once the data is staged, so `host` may go out of scope.
  FATHOM_CUDA_CHECK(cudaMemcpyAsync(dev, host.data(), host.size() * 4, cudaMemcpyHostToDevice, stream_of(ctx)));
  return varlen_view(layout, static_cast<const int32_t*>(dev));
}

}  // namespace

Status linear(ExecContext& ctx, const TensorView& x, const TensorView& w, const TensorView* bias, const TensorView& y) {
  return status_from_exceptions([&] {
    GemmParams p;
    p.dtype = x.dtype;
    p.m = static_cast<int>(x.rows());
    p.n = static_cast<int>(w.dim(0));
    p.k = static_cast<int>(w.dim(1));
    p.x = x.data; p.ldx = p.k;
    p.w = w.data; p.ldw = p.k;
    p.bias = bias ? bias->data : nullptr;
    p.y = y.data; p.ldy = p.n;
    if (p.m == 0) return;
    device_blas(ctx.device.index).gemm(p, stream_of(ctx));
  });
}

Status matmul(ExecContext& ctx, const TensorView& a, bool trans_a, const TensorView& b, bool trans_b,
              const TensorView& c, float alpha, float beta) {
  return status_from_exceptions([&] {
    GemmParams p;
    p.dtype = a.dtype;
    p.m = static_cast<int>(c.dim(0));
    p.n = static_cast<int>(c.dim(1));
    p.k = static_cast<int>(trans_a ? a.dim(0) : a.dim(1));
    p.x = a.data; p.ldx = static_cast<int>(a.dim(1)); p.x_trans = trans_a;
    p.w = b.data; p.ldw = static_cast<int>(b.dim(1)); p.w_trans = trans_b;
    p.y = c.data; p.ldy = p.n;
    p.alpha = alpha;
    if (beta != 0.0f) { p.residual = c.data; p.ldr = p.n; p.beta = beta; }
    if (p.m == 0 || p.n == 0) return;
    if (p.k == 0) throw Exception(ErrorCode::kUnsupported, "matmul on cuda: empty inner dimension");
    device_blas(ctx.device.index).gemm(p, stream_of(ctx));
  });
}

Status bias_add(ExecContext& ctx, const TensorView& x, const TensorView& bias) {
  return status_from_exceptions([&] {
    cuda::bias_add(x.dtype, x.data, bias.data, static_cast<std::size_t>(x.rows()), static_cast<int>(x.cols()),
                   stream_of(ctx));
  });
}

Status add(ExecContext& ctx, const TensorView& a, const TensorView& b, const TensorView& out) {
  return status_from_exceptions([&] { cuda::add(a.dtype, a.data, b.data, out.data, static_cast<std::size_t>(a.numel()), stream_of(ctx)); });
}

Status tanh(ExecContext& ctx, const TensorView& x, const TensorView& y) {
  return status_from_exceptions([&] { cuda::tanh(x.dtype, x.data, y.data, static_cast<std::size_t>(x.numel()), stream_of(ctx)); });
}

Status gelu(ExecContext& ctx, const TensorView& x, const TensorView& y, bool tanh) {
  return status_from_exceptions([&] { cuda::gelu(x.dtype, x.data, y.data, static_cast<std::size_t>(x.numel()), tanh, stream_of(ctx)); });
}

Status softmax(ExecContext& ctx, const TensorView& x, const TensorView& y) {
  return status_from_exceptions([&] {
    if (x.numel() == 0) return;
    cuda::softmax_rows(x.dtype, x.data, y.data, static_cast<int>(x.rows()), static_cast<int>(x.cols()), stream_of(ctx));
  });
}

Status layer_norm(ExecContext& ctx, const TensorView& x, const TensorView* residual, const TensorView& gamma,
                  const TensorView& beta, float eps, const TensorView& out) {
  return status_from_exceptions([&] {
    LayerNormParams p;
    p.dtype = x.dtype;
    p.rows = static_cast<int>(x.rows());
    p.cols = static_cast<int>(x.cols());
    p.in = x.data; p.ld_in = p.cols;
    p.residual = residual ? residual->data : nullptr; p.ld_residual = p.cols;
    p.gamma = gamma.data; p.beta = beta.data;
    p.out = out.data; p.ld_out = p.cols;
    p.eps = eps;
    cuda::layer_norm(p, stream_of(ctx));
  });
}

Status l2_normalize(ExecContext& ctx, const TensorView& x, const TensorView& out, float eps) {
  return status_from_exceptions([&] {
    if (x.numel() == 0) return;
    cuda::l2_normalize_rows(x.dtype, x.data, out.data, static_cast<int>(x.rows()), static_cast<int>(x.cols()), eps,
                            stream_of(ctx));
  });
}

Status embed_tokens(ExecContext& ctx, const TensorView& ids, const TensorView* positions, const TensorView* types,
                    const TensorView& word, const TensorView* position, const TensorView* token_type,
                    const TensorView& out) {
  return status_from_exceptions([&] {
    EmbeddingParams p;
    p.dtype = word.dtype;
    p.tokens = static_cast<int>(ids.numel());
    p.hidden = static_cast<int>(word.dim(1));
    p.ids = ids.ptr<int32_t>();
    p.word = word.data;
    p.vocab = static_cast<int>(word.dim(0));
    if (position) {
      p.position = position->data;
      p.position_ids = positions->ptr<int32_t>();
      p.max_positions = static_cast<int>(position->dim(0));
    }
    if (token_type) {
      p.token_type = token_type->data;
      p.token_type_ids = types ? types->ptr<int32_t>() : nullptr;
      p.type_vocab = static_cast<int>(token_type->dim(0));
    }
    p.out = out.data;
    cuda::embedding_layer_norm(p, stream_of(ctx));
  });
}

Status pool(ExecContext& ctx, const TensorView& hidden, const int32_t* cu, int batch, const int32_t* desc,
            int desc_max_seqs, int mode, const TensorView& out) {
  if (batch == 0) return Status::Ok();
  Result<VarlenView> view = Error{};
  Status st = status_from_exceptions([&] { view = batch_view(ctx, cu, batch, desc, desc_max_seqs); });
  if (!st.ok()) return st;
  if (!view.ok()) return view.error();
  return status_from_exceptions([&] {
    PoolParams p;
    p.dtype = hidden.dtype;
    p.mode = static_cast<PoolMode>(mode);
    p.hidden = static_cast<int>(hidden.cols());
    p.in = hidden.data; p.ld_in = p.hidden;
    p.out = out.data; p.out_dtype = out.dtype;
    p.batch = *view;
    cuda::pool(p, stream_of(ctx));
  });
}

namespace {

// q | k | v rows of q_heads, kv_heads, kv_heads heads; `extra` sets the optional fields of the parameters.
template <class Extra>
Status run_attention_varlen(ExecContext& ctx, const TensorView& qkv, const int32_t* cu, int batch, const int32_t* desc,
                            int desc_max_seqs, int q_heads, int kv_heads, int head_dim, float scale,
                            const TensorView& out, const Extra& extra) {
  if (batch == 0 || cu[batch] == 0) return Status::Ok();
  Result<VarlenView> view = Error{};
  Status st = status_from_exceptions([&] { view = batch_view(ctx, cu, batch, desc, desc_max_seqs); });
  if (!st.ok()) return st;
  if (!view.ok()) return view.error();
  return status_from_exceptions([&] {
    const std::size_t es = dtype_size(qkv.dtype);
    const int q_width = q_heads * head_dim, kv_width = kv_heads * head_dim;
    AttentionParams p;
    p.dtype = qkv.dtype;
    p.num_heads = q_heads; p.head_dim = head_dim;
    p.kv_heads = kv_heads == q_heads ? 0 : kv_heads;
    p.q = qkv.data;
    p.k = static_cast<const char*>(qkv.data) + q_width * es;
    p.v = static_cast<const char*>(qkv.data) + (q_width + kv_width) * es;
    p.ld_qkv = q_width + 2 * kv_width;
    p.out = out.data; p.ld_out = q_width;
    p.scale = scale;
    p.batch = *view;
    extra(p);
    cuda::attention_varlen(p, stream_of(ctx));
  });
}

}  // namespace

Status attention_varlen(ExecContext& ctx, const TensorView& qkv, const int32_t* cu, int batch, const int32_t* desc,
                        int desc_max_seqs, int heads, int head_dim, float scale, const TensorView& out,
                        const void* distance_bias, int span, int window_half) {
  return run_attention_varlen(ctx, qkv, cu, batch, desc, desc_max_seqs, heads, heads, head_dim, scale, out,
                              [&](AttentionParams& p) {
                                p.distance_bias = static_cast<const float*>(distance_bias);
                                p.bias_span = span;
                                p.window_half = window_half;
                              });
}

Status attention_varlen_causal(ExecContext& ctx, const TensorView& qkv, const int32_t* cu, int batch, const int32_t* desc,
                               int desc_max_seqs, int q_heads, int kv_heads, int head_dim, float scale,
                               const TensorView& out) {
  return run_attention_varlen(ctx, qkv, cu, batch, desc, desc_max_seqs, q_heads, kv_heads, head_dim, scale, out,
                              [](AttentionParams& p) { p.causal = true; });
}

Status convert(ExecContext& ctx, const TensorView& src, const TensorView& dst) {
  return status_from_exceptions([&] {
    cuda::convert(src.dtype, src.data, dst.dtype, dst.data, static_cast<std::size_t>(src.numel()), stream_of(ctx));
  });
}

}  // namespace fathom::cuda::ops
