#pragma once
// Loading an encoder family's tensors: checkpoint tensors under a detected prefix (checked for presence
// and shape, converted to the compute dtype by WeightStore), LayerNorms with or without a bias (a missing
// bias becomes zeros), and small f32 tables computed at load (rotary frequencies, relative-position bias).
// Owns every buffer it creates; charged to the model's account.
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "layers/linear.h"
#include "models/weights.h"

namespace fathom::models::encoder {

class WeightLoader {
 public:
  WeightLoader(const formats::Checkpoint& ckpt, Allocator& allocator, MemoryAccount* account, DType dtype)
      : ckpt_(&ckpt), allocator_(&allocator), account_(account), dtype_(dtype), store_(allocator, account, dtype) {}

  // Picks the first prefix under which `probe` exists; the error lists every prefix tried.
  Status detect_prefix(const std::string& probe, const std::vector<std::string>& prefixes);
  const std::string& prefix() const { return prefix_; }
  // Names resolve under `prefix` from now on (a task head outside the encoder's prefix: "head.dense").
  void set_prefix(std::string prefix) { prefix_ = std::move(prefix); }
  bool has(const std::string& name) const { return ckpt_->find(prefix_ + name) != nullptr; }
  const formats::Checkpoint& checkpoint() const { return *ckpt_; }

  Result<TensorView> tensor(const std::string& name, const Shape& shape);
  // Several tensors of `part_shape` stacked along dim 0 (fused projections).
  Result<TensorView> concat(const std::vector<std::string>& names, const Shape& part_shape);
  // NAME.weight [out, in] and, when `bias`, NAME.bias [out].
  Result<layers::Linear> linear(const std::string& name, int64_t out, int64_t in, bool bias);
  // NAME.weight [h] and NAME.bias [h] (zeros when !bias).
  Result<layers::LayerNorm> norm(const std::string& name, int64_t h, float eps, bool bias);
  // A host f32 table uploaded as f32 (whatever the compute dtype).
  Result<TensorView> f32_table(const std::vector<float>& values, const Shape& shape);
  // Zeros of the compute dtype.
  Result<TensorView> zeros(const Shape& shape);

 private:
  const formats::Checkpoint* ckpt_;
  Allocator* allocator_;
  MemoryAccount* account_;
  DType dtype_;
  WeightStore store_;
  std::string prefix_;
  std::vector<Buffer> buffers_;
};

}  // namespace fathom::models::encoder
