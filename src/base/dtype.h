#pragma once
// Element types of tensors and checkpoints.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fathom {

enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64 };

// Bytes per element.
std::size_t dtype_size(DType dtype);
// Canonical lowercase name: "float32", "float16", "bfloat16", "int32", "int64".
std::string_view dtype_name(DType dtype);
// Accepts canonical names and common aliases ("f32", "fp16", "bf16", "half", safetensors' "F32", ...).
std::optional<DType> parse_dtype(std::string_view name);
inline bool is_float(DType d) { return d == DType::kF32 || d == DType::kF16 || d == DType::kBF16; }

}  // namespace fathom
