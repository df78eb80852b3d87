#pragma once
// Writing safetensors files (tests, benchmarks and tools that build checkpoints).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

struct TensorToWrite {
  std::string name;
  std::string dtype;            // safetensors name: "F32", "F16", "BF16", "I64", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;   // raw little-endian data, numel x element size
};

// Writes `tensors` (in the given order) to `path`. Errors name the file.
Status write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors);

// Helpers to fill TensorToWrite from floats.
TensorToWrite tensor_f32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
TensorToWrite tensor_f16(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);
TensorToWrite tensor_bf16(std::string name, std::vector<int64_t> shape, const std::vector<float>& values);

}  // namespace fathom::formats
