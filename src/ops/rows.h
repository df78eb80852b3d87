#pragma once
// Row movement between tensors that do not share a layout: scatter a packed batch's rows to many
// destinations (e.g. append new key/value rows to per-sequence caches), each row's argmax, and the
// Whisper log-mel on a device.
#include "ops/common.h"

namespace fathom::ops {

// Row t of `src` ([N, C], any dtype, contiguous on ctx.device) is copied to the address dst[t]:
// `dst` is int64 [N] on ctx.device holding the byte address of each destination row (C elements of
// src.dtype, in memory of ctx.device). Destinations must not overlap each other or `src`.
// Capturable on CUDA (one launch, no host access to device memory).
Status scatter_rows(ExecContext& ctx, const TensorView& src, const TensorView& dst);

// out[r] = the index of the largest value of row r of `x` (f32 [R, C], C > 0), the first one on ties:
// greedy decoding's next token without copying the rows to the host. `out` i32 [R]. Capturable on CUDA.
Status argmax_rows(ExecContext& ctx, const TensorView& x, const TensorView& out);

// Whisper log-mel of one window on a device (CUDA only; the CPU path is formats/mel): `samples` f32
// [n_samples] (entries at index >= n_valid are read as zero), `filters` f32 [n_mels, 201]
// (formats::whisper_mel_filters), `out` f32 [n_mels, n_samples / 160]. Same features as
// formats::whisper_log_mel with pad_or_trim_samples = n_samples. Scratch from ctx.workspace.
Status whisper_log_mel(ExecContext& ctx, const TensorView& samples, int64_t n_valid, const TensorView& filters,
                       const TensorView& out);

}  // namespace fathom::ops
