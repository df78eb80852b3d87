#include "backends/cuda/blas.h"

#include <string>

#include "backends/cuda/check.h"
#include "backends/cuda/sm_partition.h"

namespace fathom::cuda {

namespace {

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kF16: return CUDA_R_16F;
    case DType::kBF16: return CUDA_R_16BF;
    default: throw Exception(ErrorCode::kUnsupported, "gemm: dtype " + std::string(dtype_name(d)) + " not supported");
  }
}

thread_local int autotune_depth = 0;

}  // namespace

GemmAutotuneScope::GemmAutotuneScope() { ++autotune_depth; }
GemmAutotuneScope::~GemmAutotuneScope() { --autotune_depth; }

BlasLt::BlasLt(int device, std::size_t workspace_bytes) : device_(device), workspace_bytes_(workspace_bytes) {
  FATHOM_CUDA_CHECK(cudaSetDevice(device));
  FATHOM_CUBLAS_CHECK(cublasLtCreate(&handle_));
  if (workspace_bytes_) FATHOM_CUDA_CHECK(cudaMalloc(&workspace_, workspace_bytes_));
}

BlasLt::~BlasLt() {
  for (auto& [k, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatrixLayoutDestroy(p.d);
    cublasLtMatmulDescDestroy(p.desc);
  }
  if (workspace_) cudaFree(workspace_);
  for (auto& [stream, w] : stream_workspaces_) cudaFree(w);
  if (handle_) cublasLtDestroy(handle_);
}

BlasLt::Plan& BlasLt::plan(const GemmParams& p, bool has_bias, bool has_residual, cudaStream_t stream) {
  const int sm_count = partition_sm_count(stream);  // 0 off a partition
  Key key{p.m, p.n, p.k, static_cast<int>(p.dtype), p.ldx, p.ldw, p.ldy, has_residual ? p.ldr : -1,
          static_cast<int>(p.act), has_bias, has_residual, p.allow_tf32, p.x_trans, p.w_trans, sm_count};
  auto it = plans_.find(key);
  if (it != plans_.end()) return it->second;

  Plan plan;
  const cudaDataType_t t = cuda_type(p.dtype);
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  if (p.dtype == DType::kF32 && p.allow_tf32) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  FATHOM_CUBLAS_CHECK(cublasLtMatmulDescCreate(&plan.desc, compute, CUDA_R_32F));
  // Column-major view: Y^T[N,M] = W[N,K] (stored as col-major KxN, transposed) * X^T (col-major KxM).
  cublasOperation_t ta = p.w_trans ? CUBLAS_OP_T : CUBLAS_OP_N, tb = p.x_trans ? CUBLAS_OP_T : CUBLAS_OP_N;
  FATHOM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  FATHOM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
  if (p.act == Activation::kGeluTanh) epi = has_bias ? CUBLASLT_EPILOGUE_GELU_BIAS : CUBLASLT_EPILOGUE_GELU;
  else if (has_bias) epi = CUBLASLT_EPILOGUE_BIAS;
  FATHOM_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
  if (sm_count > 0) {
    const int32_t target = sm_count;
    FATHOM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &target, sizeof target));
  }
  if (has_bias) {
    cudaDataType_t bt = t;
    FATHOM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
  }
  if (p.w_trans) FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, t, p.k, p.n, p.ldw));
  else FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.a, t, p.n, p.k, p.ldw));
  if (p.x_trans) FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, t, p.m, p.k, p.ldx));
  else FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.b, t, p.k, p.m, p.ldx));
  FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.c, t, p.n, p.m, has_residual ? p.ldr : p.ldy));
  FATHOM_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&plan.d, t, p.n, p.m, p.ldy));

  cublasLtMatmulPreference_t pref = nullptr;
  FATHOM_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  FATHOM_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                           &workspace_bytes_, sizeof workspace_bytes_));
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  const bool tune = autotune_depth > 0 && !has_residual &&
                    cudaStreamIsCapturing(stream, &capturing) == cudaSuccess && capturing == cudaStreamCaptureStatusNone;
  constexpr int kCandidates = 8;
  cublasLtMatmulHeuristicResult_t cand[kCandidates]{};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(handle_, plan.desc, plan.a, plan.b, plan.c, plan.d, pref,
                                                     tune ? kCandidates : 1, cand, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    cublasLtMatrixLayoutDestroy(plan.a);
    cublasLtMatrixLayoutDestroy(plan.b);
    cublasLtMatrixLayoutDestroy(plan.c);
    cublasLtMatrixLayoutDestroy(plan.d);
    cublasLtMatmulDescDestroy(plan.desc);
    throw Exception(ErrorCode::kInternal, "cuBLASLt found no algorithm for gemm m=" + std::to_string(p.m) +
                                              " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) + " " +
                                              std::string(dtype_name(p.dtype)));
  }
  plan.algo = cand[found > 1 ? fastest(plan, p, cand, found, stream, workspace_for(stream)) : 0].algo;
  return plans_.emplace(key, plan).first->second;
}

int BlasLt::fastest(const Plan& plan, const GemmParams& p, const cublasLtMatmulHeuristicResult_t* cand, int found,
                    cudaStream_t stream, void* workspace) {
  if (p.bias &&
      cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias) !=
          CUBLAS_STATUS_SUCCESS)
    return 0;
  cudaEvent_t start = nullptr, stop = nullptr;
  if (cudaEventCreate(&start) != cudaSuccess) return 0;
  if (cudaEventCreate(&stop) != cudaSuccess) {
    cudaEventDestroy(start);
    return 0;
  }
  const float alpha = p.alpha, beta = 0.0f;
  int best = 0;
  float best_ms = 0.f;
  for (int i = 0; i < found; ++i) {
    if (cand[i].state != CUBLAS_STATUS_SUCCESS || cand[i].workspaceSize > workspace_bytes_) continue;
    auto run = [&] {
      return cublasLtMatmul(handle_, plan.desc, &alpha, p.w, plan.a, p.x, plan.b, &beta, p.y, plan.c, p.y, plan.d,
                            &cand[i].algo, workspace, workspace_bytes_, stream) == CUBLAS_STATUS_SUCCESS;
    };
    if (!run()) continue;  // warm-up
    bool ok = cudaEventRecord(start, stream) == cudaSuccess;
    for (int r = 0; r < 3 && ok; ++r) ok = run();
    ok = ok && cudaEventRecord(stop, stream) == cudaSuccess && cudaEventSynchronize(stop) == cudaSuccess;
    float ms = 0.f;
    if (ok && cudaEventElapsedTime(&ms, start, stop) == cudaSuccess && (i == 0 || ms < best_ms || best_ms == 0.f)) {
      best = i;
      best_ms = ms;
    }
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  (void)cudaGetLastError();
  return best;
}

void* BlasLt::workspace_for(cudaStream_t stream) const {
  auto it = stream_workspaces_.find(stream);
  return it == stream_workspaces_.end() ? workspace_ : it->second;
}

void BlasLt::add_stream(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!workspace_bytes_ || stream_workspaces_.count(stream)) return;
  void* w = nullptr;
  FATHOM_CUDA_CHECK(cudaSetDevice(device_));
  FATHOM_CUDA_CHECK(cudaMalloc(&w, workspace_bytes_));
  stream_workspaces_[stream] = w;
}

void BlasLt::remove_stream(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = stream_workspaces_.find(stream);
  if (it == stream_workspaces_.end()) return;
  cudaFree(it->second);
  stream_workspaces_.erase(it);
}

void BlasLt::gemm(const GemmParams& p, cudaStream_t stream) {
  if (p.m <= 0 || p.n <= 0 || p.k <= 0 || p.ldx < (p.x_trans ? p.m : p.k) || p.ldw < (p.w_trans ? p.k : p.n) ||
      p.ldy < p.n ||
      (p.residual && p.ldr < p.n) || !p.x || !p.w || !p.y)
    throw Exception(ErrorCode::kInvalidArgument, "gemm: bad shape m=" + std::to_string(p.m) +
                                                     " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k));
  if (p.residual && p.act != Activation::kNone)
    throw Exception(ErrorCode::kInvalidArgument, "gemm: a residual cannot be combined with an activation");
  if (p.residual == p.y && p.residual && p.ldr != p.ldy)
    throw Exception(ErrorCode::kInvalidArgument, "gemm: an in-place residual needs ldr == ldy");
  const bool has_bias = p.bias != nullptr, has_res = p.residual != nullptr;
  std::lock_guard<std::mutex> lock(mu_);
  Plan& pl = plan(p, has_bias, has_res, stream);
  if (has_bias)
    FATHOM_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  const float alpha = p.alpha, beta = has_res ? p.beta : 0.0f;
  FATHOM_CUBLAS_CHECK(cublasLtMatmul(handle_, pl.desc, &alpha, p.w, pl.a, p.x, pl.b, &beta,
                                     has_res ? p.residual : p.y, pl.c, p.y, pl.d, &pl.algo, workspace_for(stream),
                                     workspace_bytes_, stream));
  if (p.act == Activation::kGeluErf) gelu_erf_inplace(p.dtype, p.y, p.m, p.n, p.ldy, stream);
}

}  // namespace fathom::cuda
