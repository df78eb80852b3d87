#pragma once
// Tensor-core (mma.sync) path of cuda::attention_varlen for f16 / bf16 with head_dim 32, 64 or 128.
// Same contract as attention_varlen (kernels.h); attention_varlen picks it when attention_mma_supported().
#include <cuda_runtime_api.h>

#include "backends/cuda/kernels.h"

namespace fathom::cuda {

// True for f16/bf16, head_dim in {32, 64, 128}, 16-byte aligned q/k/v/out and leading dimensions that
// are multiples of 8 elements.
bool attention_mma_supported(const AttentionParams& p);
// scale_log2 = softmax scale * log2(e). Enqueues on `stream`; capturable (reads the batch on the device).
void attention_varlen_mma(const AttentionParams& p, float scale_log2, cudaStream_t stream);

}  // namespace fathom::cuda
