#include "backends/cuda/check.h"

#include "runtime/device_fault.h"

namespace fathom::cuda {

namespace {

// Errors that leave the CUDA context unusable: every later call in this process fails too.
bool is_sticky(cudaError_t err) {
  switch (err) {
    case cudaErrorIllegalAddress:
    case cudaErrorLaunchFailure:
    case cudaErrorAssert:
    case cudaErrorHardwareStackError:
    case cudaErrorIllegalInstruction:
    case cudaErrorMisalignedAddress:
    case cudaErrorInvalidAddressSpace:
    case cudaErrorInvalidPc:
    case cudaErrorLaunchTimeout:
    case cudaErrorECCUncorrectable:
      return true;
    default:
      return false;
  }
}

}  // namespace

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  ErrorCode code = err == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  std::string message = std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                        ") in " + expr + " at " + file + ":" + std::to_string(line);
  if (is_sticky(err)) {
    int device = 0;
    (void)cudaGetDevice(&device);
    report_device_fault("cuda:" + std::to_string(device), message);
  }
  throw Exception(code, message);
}

void throw_cublas_error(cublasStatus_t st, const char* expr, const char* file, int line) {
  ErrorCode code = st == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  throw Exception(code, std::string("cuBLAS error ") + cublasLtGetStatusName(st) + " (" +
                            cublasLtGetStatusString(st) + ") in " + expr + " at " + file + ":" +
                            std::to_string(line));
}

}  // namespace fathom::cuda
