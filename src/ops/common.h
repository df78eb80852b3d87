#pragma once
// Shared validation for ops: every op checks devices, dtypes and shapes before touching memory and
// returns a Status naming the op, the argument and what was expected. Failures are kInvalidArgument
// (caller bug or bad input) or kUnsupported (device x dtype the op cannot do).
#include <string>

#include "base/error.h"
#include "runtime/exec_context.h"
#include "runtime/tensor.h"

namespace fathom::ops {

// Whether the ops compute in `dtype` on `kind` (CPU: f32). Models check this at load time.
bool compute_supported(DeviceKind kind, DType dtype);
// Makes `device` usable by ops: checks that it exists in this build and process and registers its
// allocator (see allocator_for()). Models call it at load; idempotent and thread-safe.
Status prepare_device(const Device& device);

// `t` is non-null, lives on ctx.device and has dtype `dtype`.
Status check_tensor(const ExecContext& ctx, const TensorView& t, DType dtype, const char* op, const char* name);
// `t` has exactly `shape`.
Status check_shape(const TensorView& t, const Shape& shape, const char* op, const char* name);
// `t` read as [rows, cols] (rows = product of leading dims) has `cols` columns (and `rows` rows if >= 0).
Status check_matrix(const TensorView& t, int64_t rows, int64_t cols, const char* op, const char* name);
// The error for an op not implemented on ctx.device.
Error unsupported_device(const ExecContext& ctx, const char* op);

}  // namespace fathom::ops
