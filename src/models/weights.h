#pragma once
// Loading checkpoint tensors onto a device for a model: each tensor is checked (present, shape) and
// converted to the compute dtype (f16/bf16 checkpoints become f32 on CPU). The store owns the device
// buffers, charged to the model's MemoryAccount.
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "formats/safetensors.h"
#include "runtime/allocator.h"
#include "runtime/tensor.h"

namespace fathom::models {

class WeightStore {
 public:
  WeightStore(Allocator& allocator, MemoryAccount* account, DType compute_dtype)
      : allocator_(&allocator), account_(account), dtype_(compute_dtype) {}

  // Loads `name` from `ckpt`, expecting `shape`. Errors (kLoadFailed) name the tensor and the checkpoint
  // file: missing tensor, wrong shape (found vs expected), non-float dtype.
  Result<TensorView> load(const formats::Checkpoint& ckpt, const std::string& name, const Shape& shape);
  // Loads several tensors and concatenates them along dim 0 into one device tensor (e.g. fused QKV).
  // Each part must have `part_shape`; the result has part_shape[0] * names.size() rows.
  Result<TensorView> load_concat(const formats::Checkpoint& ckpt, const std::vector<std::string>& names,
                                 const Shape& part_shape);
  // Loads tensors of different row counts but the same trailing dims and stacks them along dim 0 in order
  // (e.g. a fused q | k | v projection whose key/value parts are narrower than the query part).
  struct Part {
    std::string name;
    Shape shape;
  };
  Result<TensorView> load_rows(const formats::Checkpoint& ckpt, const std::vector<Part>& parts);

  std::size_t bytes() const { return bytes_; }

 private:
  Result<const formats::TensorInfo*> find(const formats::Checkpoint& ckpt, const std::string& name, const Shape& shape);
  // Converts `info` into device memory at `dst` (numel elements of the compute dtype).
  Status upload(const formats::TensorInfo& info, void* dst);

  Allocator* allocator_;
  MemoryAccount* account_;
  DType dtype_;
  std::vector<Buffer> buffers_;
  std::size_t bytes_ = 0;
};

}  // namespace fathom::models
