#pragma once
// A batch of sequences packed without padding: sequence b holds tokens [cu[b], cu[b+1]) of a
// [total, ...] tensor. Built once per forward pass by the model and shared by attention and pooling.
#include <cstdint>
#include <vector>

#include "base/error.h"
#include "runtime/tensor.h"

namespace fathom::ops {

struct VarlenBatch {
  std::vector<int32_t> cu_seqlens;  // host copy, batch + 1 entries, cu[0] = 0, non-decreasing
  TensorView cu_seqlens_device;     // the same values on the compute device (int32 [batch + 1]); on CPU
                                    // ops read the host copy and this may be left empty
  int max_seqlen = 0;               // longest sequence
  // CUDA only: device copy of the batch description the CUDA kernels read (int32, laid out as
  // cuda::VarlenLayout{cuda_max_seqs, total()}, filled by cuda::fill_varlen / fill_varlen_meta). A model
  // that replays CUDA graphs uploads it before each replay; when null, CUDA ops build it per call
  // (eager only).
  const int32_t* cuda_desc = nullptr;
  int cuda_max_seqs = 0;

  int batch() const { return cu_seqlens.empty() ? 0 : static_cast<int>(cu_seqlens.size()) - 1; }
  int total() const { return cu_seqlens.empty() ? 0 : cu_seqlens.back(); }

  // From sequence lengths (each >= 0).
  static VarlenBatch from_lengths(const std::vector<int>& lengths);
  // Checks the invariants above; errors name the first broken entry.
  Status validate() const;
};

}  // namespace fathom::ops
