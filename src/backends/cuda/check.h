#pragma once
// Error checks for CUDA runtime and cuBLAS(Lt) calls. A failing call throws fathom::Exception
// (ErrorCode::kInternal, or kOutOfMemory for allocation failures) whose message names the call, the
// CUDA error string and the source location. Host code only.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "base/error.h"

namespace fathom::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line);

}  // namespace fathom::cuda

#define FATHOM_CUDA_CHECK(expr)                                                         \
  do {                                                                                  \
    cudaError_t fathom_cuda_err_ = (expr);                                              \
    if (fathom_cuda_err_ != cudaSuccess)                                                \
      ::fathom::cuda::throw_cuda_error(fathom_cuda_err_, #expr, __FILE__, __LINE__);    \
  } while (0)

#define FATHOM_CUBLAS_CHECK(expr)                                                       \
  do {                                                                                  \
    cublasStatus_t fathom_cublas_st_ = (expr);                                          \
    if (fathom_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                     \
      ::fathom::cuda::throw_cublas_error(fathom_cublas_st_, #expr, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: surfaces launch-configuration errors immediately (no device sync).
#define FATHOM_CUDA_CHECK_LAUNCH() FATHOM_CUDA_CHECK(cudaGetLastError())
