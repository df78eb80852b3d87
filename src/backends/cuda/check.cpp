#include "backends/cuda/check.h"

namespace fathom::cuda {

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  throw Exception(code, std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                            ") in " + expr + " at " + file + ":" + std::to_string(line));
}

void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line) {
  ErrorCode code = st == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  throw Exception(code, std::string("cuBLAS error ") + cublasLtGetStatusName(st) + " (" +
                            cublasLtGetStatusString(st) + ") in " + expr + " at " + file + ":" +
                            std::to_string(line));
}

}  // namespace fathom::cuda
