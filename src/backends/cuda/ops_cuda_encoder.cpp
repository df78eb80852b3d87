// The CUDA side of ops::rotary_qk and ops::gated_activation (validated by the ops layer).
#include "backends/cuda/encoder_kernels.h"
#include "backends/cuda/check.h"
#include "backends/cuda/ops_cuda.h"

namespace fathom::cuda::ops {

Status rotary_qk(ExecContext& ctx, const TensorView& qkv, const TensorView& positions, int heads, int head_dim,
                 int rotary_dim, const TensorView& inv_freq) {
  return status_from_exceptions([&] {
    cuda::rotary_qk(qkv.dtype, qkv.data, positions.ptr<int32_t>(), static_cast<int>(positions.numel()), heads, head_dim,
                    rotary_dim, inv_freq.ptr<float>(), static_cast<cudaStream_t>(ctx.stream));
  });
}

Status gated_activation(ExecContext& ctx, const TensorView& x, const TensorView& y, int act, bool activate_first) {
  return status_from_exceptions([&] {
    cuda::gated_activation(x.dtype, x.data, y.data, x.rows(), y.cols(), act, activate_first,
                           static_cast<cudaStream_t>(ctx.stream));
  });
}

}  // namespace fathom::cuda::ops
