#include "formats/safetensors_writer.h"

#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "base/half.h"

namespace fathom::formats {

Status write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return make_error(ErrorCode::kInternal, path.string() + ": cannot be written");
  uint64_t len = h.size();
  unsigned char le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<unsigned char>(len >> (8 * i));
  out.write(reinterpret_cast<const char*>(le), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors) out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
  if (!out) return make_error(ErrorCode::kInternal, path.string() + ": write failed");
  return Status::Ok();
}

TensorToWrite tensor_f32(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  TensorToWrite t{std::move(name), "F32", std::move(shape), {}};
  t.bytes.resize(values.size() * 4);
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

namespace {
template <typename F>
TensorToWrite tensor_16(std::string name, const char* dtype, std::vector<int64_t> shape, const std::vector<float>& values, F f) {
  TensorToWrite t{std::move(name), dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * 2);
  for (std::size_t i = 0; i < values.size(); ++i) {
    uint16_t h = f(values[i]);
    std::memcpy(t.bytes.data() + 2 * i, &h, 2);
  }
  return t;
}
}  // namespace

TensorToWrite tensor_f16(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  return tensor_16(std::move(name), "F16", std::move(shape), values, f32_to_f16);
}
TensorToWrite tensor_bf16(std::string name, std::vector<int64_t> shape, const std::vector<float>& values) {
  return tensor_16(std::move(name), "BF16", std::move(shape), values, f32_to_bf16);
}

}  // namespace fathom::formats
