#pragma once
// Minimal safetensors reader for the GPU benchmark harness (single file or a sharded index): tensor name
// -> dtype, shape, bytes. Whole files are read into memory. Throws std::runtime_error on malformed input.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/dtype.h"
#include "base/half.h"

namespace fathom::benchgpu {

struct HostTensor {
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  std::size_t numel() const { std::size_t n = 1; for (auto d : shape) n *= static_cast<std::size_t>(d); return n; }
  std::vector<float> to_f32() const {
    std::vector<float> v(numel());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (dtype == DType::kF32) std::memcpy(&v[i], data + 4 * i, 4);
      else {
        uint16_t h;
        std::memcpy(&h, data + 2 * i, 2);
        v[i] = dtype == DType::kF16 ? f16_to_f32(h) : bf16_to_f32(h);
      }
    }
    return v;
  }
};

class Checkpoint {
 public:
  explicit Checkpoint(const std::filesystem::path& dir) {
    auto index = dir / "model.safetensors.index.json";
    if (std::filesystem::exists(index)) {
      std::ifstream f(index);
      auto j = nlohmann::json::parse(f);
      std::map<std::string, bool> files;
      for (auto& [k, v] : j["weight_map"].items()) files[v.get<std::string>()] = true;
      for (auto& [name, _] : files) load(dir / name);
    } else {
      load(dir / "model.safetensors");
    }
  }
  const HostTensor& get(const std::string& name) const {
    auto it = tensors_.find(name);
    if (it == tensors_.end()) throw std::runtime_error("tensor not found: " + name);
    return it->second;
  }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // The prefix before "embeddings.word_embeddings.weight" ("" or "bert." ...).
  std::string prefix() const {
    for (auto& [k, v] : tensors_) {
      auto pos = k.find("embeddings.word_embeddings.weight");
      if (pos != std::string::npos) return k.substr(0, pos);
    }
    throw std::runtime_error("no embeddings.word_embeddings.weight in checkpoint");
  }

 private:
  void load(const std::filesystem::path& file) {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + file.string());
    auto buf = std::make_unique<std::vector<uint8_t>>(std::filesystem::file_size(file));
    f.read(reinterpret_cast<char*>(buf->data()), static_cast<std::streamsize>(buf->size()));
    uint64_t n = 0;
    std::memcpy(&n, buf->data(), 8);
    auto header = nlohmann::json::parse(std::string(reinterpret_cast<char*>(buf->data()) + 8, n));
    const uint8_t* base = buf->data() + 8 + n;
    for (auto& [name, t] : header.items()) {
      if (name == "__metadata__") continue;
      HostTensor ht;
      auto dt = parse_dtype(t["dtype"].get<std::string>());
      if (!dt) throw std::runtime_error("unsupported dtype in " + name);
      ht.dtype = *dt;
      ht.shape = t["shape"].get<std::vector<int64_t>>();
      ht.data = base + t["data_offsets"][0].get<std::size_t>();
      tensors_[name] = ht;
    }
    buffers_.push_back(std::move(buf));
  }
  std::vector<std::unique_ptr<std::vector<uint8_t>>> buffers_;
  std::map<std::string, HostTensor> tensors_;
};

}  // namespace fathom::benchgpu
