#pragma once
// Matrix products through cuBLASLt.
//
// Layout (row-major, PyTorch Linear convention by default):
//   Y[M,N] = act(alpha · opX(X) · opW(W) + beta · R[M,N] + bias[N])
//   opX(X) = X [M,K] (x_trans: X stored [K,M], transposed);  opW(W) = W^T with W stored [N,K] (w_trans, the
//   default; otherwise W stored [K,N]).  ld* are row strides in elements.
//   R: optional residual (beta defaults to 1 with R, 0 without); R may equal Y (in-place accumulate) only
//   with ldr == ldy.  bias: optional, N elements, same dtype as W.
// All of X, W, Y, R, bias share one dtype (f32, f16 or bf16); accumulation is f32. f32 products use
// full-precision f32 arithmetic unless GemmParams::allow_tf32 is set.
// Activation: kGeluErf is exact GELU (BERT's "gelu"), applied by a separate pass after the bias
// epilogue; kGeluTanh ("gelu_new", "gelu_pytorch_tanh") is fused in the cuBLASLt epilogue.
// Capturable in a CUDA graph (the workspace is preallocated; plans are cached per shape on the host, so
// capture the first use of a shape only after it ran once eagerly, or accept the host-side planning
// inside capture, which performs no device allocation or sync).
//
// Algorithm choice: cuBLASLt's first heuristic, except while a GemmAutotuneScope is alive on the calling
// thread: then a new plan (without residual) times up to 8 heuristic candidates on the call's own buffers
// (the stream is synchronised; not while the stream is capturing) and keeps the fastest. CUDA-graph set-up
// passes open such a scope, so every shape a graph replays is tuned once, when it is captured.
//
// BlasLt: one cuBLASLt handle, its workspace and a plan cache. gemm() is serialised by a mutex on the host.
// The shared workspace allows one product in flight at a time on the device, so every stream using it must
// be ordered with the others (one device worker runs them one after another). A stream whose work may overlap
// other streams' (every model's runner stream: see ops/device_runner.cpp) registers a private workspace with add_stream() before
// its first product (and before any graph capture: graphs keep the workspace pointer); gemm() on that stream
// then uses it. remove_stream() frees it (call once the stream is idle, before destroying it).
// Products on a stream of an SM partition (sm_partition.h, partition_sm_count) are planned for that many SMs
// (CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, so grids fill the partition in whole waves) and their plans are
// cached apart from the full device's.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <map>
#include <mutex>
#include <tuple>

#include "base/dtype.h"

namespace fathom::cuda {

enum class Activation { kNone, kGeluErf, kGeluTanh };

// While alive, new GEMM plans created on this thread are autotuned (see above). Nests.
class GemmAutotuneScope {
 public:
  GemmAutotuneScope();
  ~GemmAutotuneScope();
  GemmAutotuneScope(const GemmAutotuneScope&) = delete;
  GemmAutotuneScope& operator=(const GemmAutotuneScope&) = delete;
};

struct GemmParams {
  DType dtype = DType::kF32;
  int m = 0, n = 0, k = 0;
  const void* x = nullptr;
  int ldx = 0;
  const void* w = nullptr;
  int ldw = 0;
  const void* bias = nullptr;  // [n] or nullptr
  const void* residual = nullptr;  // [m, ldr] or nullptr; must not alias y
  int ldr = 0;
  void* y = nullptr;
  int ldy = 0;
  Activation act = Activation::kNone;
  bool allow_tf32 = false;  // f32 only: use TF32 tensor cores
  bool x_trans = false;
  bool w_trans = true;
  float alpha = 1.0f;
  float beta = 1.0f;  // applies only with a residual
};

class BlasLt {
 public:
  explicit BlasLt(int device, std::size_t workspace_bytes = 32u << 20);
  ~BlasLt();
  BlasLt(const BlasLt&) = delete;
  BlasLt& operator=(const BlasLt&) = delete;

  // Queues the product on `stream`. Throws fathom::Exception (kInvalidArgument for bad shapes, kInternal
  // for cuBLAS failures or when no algorithm exists).
  void gemm(const GemmParams& p, cudaStream_t stream);

  // A private workspace for `stream` (see above); idempotent. Throws fathom::Exception when cudaMalloc fails.
  void add_stream(cudaStream_t stream);
  void remove_stream(cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };
  using Key = std::tuple<int, int, int, int, int, int, int, int, int, int, int, bool, bool, bool, int>;
  Plan& plan(const GemmParams& p, bool has_bias, bool has_residual, cudaStream_t stream);
  // Times `found` candidates on p's buffers and returns the index of the fastest (0 when timing fails).
  int fastest(const Plan& plan, const GemmParams& p, const cublasLtMatmulHeuristicResult_t* cand, int found,
              cudaStream_t stream, void* workspace);
  void* workspace_for(cudaStream_t stream) const;  // call with mu_ held

  int device_;
  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_;
  std::map<Key, Plan> plans_;
  std::map<cudaStream_t, void*> stream_workspaces_;  // private workspaces, workspace_bytes_ each
  std::mutex mu_;
};

// In-place exact GELU on a [rows, cols] matrix with leading dimension ld (elements).
void gelu_erf_inplace(DType dtype, void* data, int rows, int cols, int ld, cudaStream_t stream);

}  // namespace fathom::cuda
