// Micro-benchmark of the CUDA sequence ops on Whisper shapes: attention_cached decode steps (achieved
// DRAM bandwidth over the K/V bytes read) and the conv1d front end (achieved TFLOP/s). Random data, CUDA
// events around `iters` back-to-back launches after warm-up. One JSON object per line on stdout.
//
//   fathom_seq_ops_bench [--iters 100]
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/context.h"
#include "backends/cuda/device.h"
#include "backends/cuda/sequence_kernels.h"
#include "base/half.h"
#include "ops/attention_cached.h"
#include "ops/conv1d.h"

using namespace fathom;

namespace {

int g_iters = 100;

// Fills n elements of `dtype` with small pseudo-random values (uniform in [-1, 1) before conversion).
Buffer random_buffer(DType dtype, std::size_t n, uint32_t seed) {
  Buffer b = std::move(Buffer::allocate(cuda::device_allocator(0), std::max<std::size_t>(n, 1) * dtype_size(dtype)).value());
  std::vector<float> h(n);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : h) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / static_cast<float>(1u << 24) * 2.f - 1.f;
  }
  std::vector<uint8_t> raw(n * dtype_size(dtype));
  for (std::size_t i = 0; i < n; ++i) {
    if (dtype == DType::kF32) std::memcpy(raw.data() + 4 * i, &h[i], 4);
    else {
      const uint16_t v = dtype == DType::kF16 ? f32_to_f16(h[i]) : f32_to_bf16(h[i]);
      std::memcpy(raw.data() + 2 * i, &v, 2);
    }
  }
  FATHOM_CUDA_CHECK(cudaMemcpy(b.data(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return b;
}

// Mean milliseconds per call of f (queued on `stream`).
double time_ms(cudaStream_t stream, const std::function<void()>& f) {
  for (int i = 0; i < 5; ++i) f();
  cudaEvent_t a, b;
  FATHOM_CUDA_CHECK(cudaEventCreate(&a));
  FATHOM_CUDA_CHECK(cudaEventCreate(&b));
  FATHOM_CUDA_CHECK(cudaEventRecord(a, stream));
  for (int i = 0; i < g_iters; ++i) f();
  FATHOM_CUDA_CHECK(cudaEventRecord(b, stream));
  FATHOM_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  FATHOM_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms / g_iters;
}

void check(const Status& st) {
  if (!st.ok()) throw std::runtime_error(st.error().message);
}

// One decode step: `batch` sequences of `queries` rows each over their own `keys` keys (each sequence
// owns separate K and V [keys, heads*64] buffers, like Whisper's per-window cross K/V).
void bench_attention(cuda::CudaExecContext& g, const char* name, DType dtype, int batch, int queries, int heads,
                     int keys, bool causal) {
  const int hd = 64, hidden = heads * hd;
  const std::size_t es = dtype_size(dtype);
  const int T = batch * queries;
  Buffer q = random_buffer(dtype, static_cast<std::size_t>(T) * hidden, 1);
  Buffer out = random_buffer(dtype, static_cast<std::size_t>(T) * hidden, 2);
  std::vector<Buffer> kv;
  std::vector<TensorView> kvk, kvv;
  for (int b = 0; b < batch; ++b) {
    kv.push_back(random_buffer(dtype, static_cast<std::size_t>(2) * keys * hidden, 10 + b));
    kvk.emplace_back(kv.back().data(), dtype, Shape{keys, hidden}, Device::cuda(0));
    kvv.emplace_back(static_cast<char*>(kv.back().data()) + static_cast<std::size_t>(keys) * hidden * es, dtype,
                     Shape{keys, hidden}, Device::cuda(0));
  }
  auto vb = ops::VarlenBatch::from_lengths(std::vector<int>(static_cast<std::size_t>(batch), queries));
  TensorView qv(q.data(), dtype, Shape{T, hidden}, Device::cuda(0)), ov(out.data(), dtype, Shape{T, hidden}, Device::cuda(0));
  const float scale = 0.125f;
  const double op_ms = time_ms(g.stream(), [&] {
    check(ops::attention_cached(g.ctx(), qv, vb, kvk, kvv, heads, hd, scale, causal, ov));
  });
  // The kernel alone, over a description uploaded once (what a captured graph replays).
  std::vector<cuda::CachedAttnSeq> seqs(static_cast<std::size_t>(batch));
  for (int b = 0; b < batch; ++b) seqs[b] = {kvk[b].data, kvv[b].data, keys, b * queries, queries, 0};
  Buffer dseqs = std::move(Buffer::allocate(cuda::device_allocator(0), seqs.size() * sizeof(seqs[0])).value());
  FATHOM_CUDA_CHECK(cudaMemcpy(dseqs.data(), seqs.data(), seqs.size() * sizeof(seqs[0]), cudaMemcpyHostToDevice));
  int sms = 0;
  FATHOM_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cuda::CachedAttentionParams p;
  p.dtype = dtype; p.heads = heads; p.head_dim = hd;
  p.q = q.data(); p.ld_q = hidden; p.out = out.data(); p.ld_out = hidden;
  p.ld_kv = hidden; p.kv_aligned = true;
  p.seqs = static_cast<const cuda::CachedAttnSeq*>(dseqs.data());
  p.num_seqs = batch; p.rows = T; p.max_q_len = queries; p.max_kv_len = keys;
  p.causal = causal; p.scale = scale;
  p.splits = cuda::cached_attention_splits(batch, queries, heads, keys, sms);
  Buffer partial = std::move(Buffer::allocate(cuda::device_allocator(0),
      std::max<std::size_t>(1, cuda::cached_attention_partial_floats(T, heads, hd, p.splits) * 4)).value());
  p.partial = static_cast<float*>(partial.data());
  const double k_ms = time_ms(g.stream(), [&] { cuda::cached_attention(p, g.stream()); });
  const double bytes = 2.0 * batch * keys * hidden * es + 2.0 * T * hidden * es;
  std::printf("{\"bench\":\"attention_cached\",\"case\":\"%s\",\"dtype\":\"%s\",\"batch\":%d,\"queries\":%d,\"heads\":%d,"
              "\"head_dim\":%d,\"keys\":%d,\"causal\":%s,\"splits\":%d,\"bytes\":%.0f,\"op_us\":%.2f,\"op_GBps\":%.1f,"
              "\"kernel_us\":%.2f,\"kernel_GBps\":%.1f}\n",
              name, std::string(dtype_name(dtype)).c_str(), batch, queries, heads, hd, keys, causal ? "true" : "false",
              p.splits, bytes, op_ms * 1e3, bytes / (op_ms * 1e-3) / 1e9, k_ms * 1e3, bytes / (k_ms * 1e-3) / 1e9);
  std::fflush(stdout);
}

void bench_conv(cuda::CudaExecContext& g, const char* name, DType dtype, int batch, int c_in, int t_in, int c_out,
                int stride, bool channel_major) {
  const int k = 3, pad = 1;
  const int64_t t_out = ops::conv1d_output_length(t_in, k, stride, pad);
  Buffer x = random_buffer(dtype, static_cast<std::size_t>(batch) * c_in * t_in, 1);
  Buffer w = random_buffer(dtype, static_cast<std::size_t>(c_out) * c_in * k, 2);
  Buffer b = random_buffer(dtype, static_cast<std::size_t>(c_out), 3);
  Buffer y = random_buffer(dtype, static_cast<std::size_t>(batch) * t_out * c_out, 4);
  TensorView xv(x.data(), dtype, channel_major ? Shape{batch, c_in, t_in} : Shape{batch, t_in, c_in}, Device::cuda(0));
  TensorView wv(w.data(), dtype, Shape{c_out, c_in, k}, Device::cuda(0));
  TensorView bv(b.data(), dtype, Shape{c_out}, Device::cuda(0));
  TensorView yv(y.data(), dtype, Shape{batch, t_out, c_out}, Device::cuda(0));
  const auto layout = channel_major ? ops::Conv1dInput::kChannelMajor : ops::Conv1dInput::kTimeMajor;
  const double ms = time_ms(g.stream(), [&] { check(ops::conv1d(g.ctx(), xv, layout, wv, &bv, stride, pad, yv)); });
  const double flops = 2.0 * batch * t_out * c_out * c_in * k;
  std::printf("{\"bench\":\"conv1d\",\"case\":\"%s\",\"dtype\":\"%s\",\"batch\":%d,\"c_in\":%d,\"t_in\":%d,\"c_out\":%d,"
              "\"stride\":%d,\"us\":%.2f,\"TFLOPs\":%.1f}\n",
              name, std::string(dtype_name(dtype)).c_str(), batch, c_in, t_in, c_out, stride, ms * 1e3,
              flops / (ms * 1e-3) / 1e12);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; i += 2)
    if (std::string(argv[i]) == "--iters") g_iters = std::max(1, std::atoi(argv[i + 1]));
  if (cuda::device_count() == 0) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  try {
    std::printf("{\"device\":\"%s\"}\n", cuda::device_description(0).c_str());
    cuda::CudaExecContext g(0);
    // Whisper large-v3 decoder (20 heads x 64): cross-attention decode over 1500 encoder frames.
    for (DType d : {DType::kF16, DType::kBF16, DType::kF32})
      bench_attention(g, "cross decode large-v3", d, 64, 1, 20, 1500, false);
    bench_attention(g, "cross decode large-v3", DType::kF16, 128, 1, 20, 1500, false);
    bench_attention(g, "cross decode large-v3", DType::kF16, 8, 1, 20, 1500, false);
    bench_attention(g, "cross decode large-v3", DType::kF16, 1, 1, 20, 1500, false);
    bench_attention(g, "self decode large-v3 (448 cached)", DType::kF16, 64, 1, 20, 448, true);
    bench_attention(g, "cross decode tiny", DType::kF16, 64, 1, 6, 1500, false);
    bench_attention(g, "prefill 4 tokens large-v3", DType::kF16, 64, 4, 20, 1500, false);
    // Front end of large-v3 (128 mels, d 1280) for 1 and 8 windows.
    for (int b : {1, 8}) {
      bench_conv(g, "conv1 large-v3 (mel, k3 s1)", DType::kF16, b, 128, 3000, 1280, 1, true);
      bench_conv(g, "conv2 large-v3 (k3 s2)", DType::kF16, b, 1280, 3000, 1280, 2, false);
    }
    bench_conv(g, "conv2 large-v3 (k3 s2)", DType::kF32, 1, 1280, 3000, 1280, 2, false);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fathom_seq_ops_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
