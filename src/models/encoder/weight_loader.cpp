#include "models/encoder/weight_loader.h"

namespace fathom::models::encoder {

Status WeightLoader::detect_prefix(const std::string& probe, const std::vector<std::string>& prefixes) {
  std::string tried;
  for (const auto& p : prefixes) {
    if (ckpt_->find(p + probe)) {
      prefix_ = p;
      return Status::Ok();
    }
    tried += (tried.empty() ? "'" : ", '") + p + "'";
  }
  return make_error(ErrorCode::kLoadFailed,
                    ckpt_->description() + ": tensor '" + probe + "' is missing (looked for the prefixes " + tried + ")");
}

Result<TensorView> WeightLoader::tensor(const std::string& name, const Shape& shape) {
  return store_.load(*ckpt_, prefix_ + name, shape);
}

Result<TensorView> WeightLoader::concat(const std::vector<std::string>& names, const Shape& part_shape) {
  std::vector<std::string> full;
  for (const auto& n : names) full.push_back(prefix_ + n);
  return store_.load_concat(*ckpt_, full, part_shape);
}

Result<layers::Linear> WeightLoader::linear(const std::string& name, int64_t out, int64_t in, bool bias) {
  layers::Linear l;
  FATHOM_ASSIGN_OR_RETURN(l.weight, tensor(name + ".weight", Shape{out, in}));
  if (bias) {
    FATHOM_ASSIGN_OR_RETURN(l.bias, tensor(name + ".bias", Shape{out}));
  }
  return l;
}

Result<layers::LayerNorm> WeightLoader::norm(const std::string& name, int64_t h, float eps, bool bias) {
  layers::LayerNorm n;
  n.eps = eps;
  FATHOM_ASSIGN_OR_RETURN(n.gamma, tensor(name + ".weight", Shape{h}));
  if (bias) {
    FATHOM_ASSIGN_OR_RETURN(n.beta, tensor(name + ".bias", Shape{h}));
  } else {
    FATHOM_ASSIGN_OR_RETURN(n.beta, zeros(Shape{h}));
  }
  return n;
}

Result<TensorView> WeightLoader::f32_table(const std::vector<float>& values, const Shape& shape) {
  if (static_cast<int64_t>(values.size()) != shape.numel())
    return make_error(ErrorCode::kInternal, "f32_table: " + std::to_string(values.size()) + " values for shape " +
                                                shape.to_string());
  FATHOM_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(*allocator_, values.size() * sizeof(float), account_));
  FATHOM_TRY(allocator_->copy_from_host(buf.data(), values.data(), values.size() * sizeof(float)));
  TensorView v = buf.view(DType::kF32, shape);
  buffers_.push_back(std::move(buf));
  return v;
}

Result<TensorView> WeightLoader::zeros(const Shape& shape) {
  const std::size_t bytes = static_cast<std::size_t>(shape.numel()) * dtype_size(dtype_);
  std::vector<uint8_t> host(bytes, 0);  // all-zero bits are 0.0 in f32, f16 and bf16
  FATHOM_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(*allocator_, bytes, account_));
  FATHOM_TRY(allocator_->copy_from_host(buf.data(), host.data(), bytes));
  TensorView v = buf.view(dtype_, shape);
  buffers_.push_back(std::move(buf));
  return v;
}

}  // namespace fathom::models::encoder
