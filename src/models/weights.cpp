#include "models/weights.h"

#include "ops/convert.h"
#include "runtime/exec_context.h"

namespace fathom::models {

Result<const formats::TensorInfo*> WeightStore::find(const formats::Checkpoint& ckpt, const std::string& name,
                                                     const Shape& shape) {
  const formats::TensorInfo* info = ckpt.find(name);
  if (!info)
    return make_error(ErrorCode::kLoadFailed, ckpt.description() + ": tensor '" + name + "' is missing");
  const std::string file = ckpt.file_of(name).string();
  bool same = static_cast<int>(info->shape.size()) == shape.rank;
  for (int i = 0; same && i < shape.rank; ++i) same = info->shape[static_cast<std::size_t>(i)] == shape[i];
  if (!same)
    return make_error(ErrorCode::kLoadFailed, file + ": tensor '" + name + "' has shape " + info->shape_string() +
                                                  ", expected " + shape.to_string());
  if (!info->dtype || !is_float(*info->dtype))
    return make_error(ErrorCode::kLoadFailed,
                      file + ": tensor '" + name + "' has dtype " + info->dtype_name + ", expected F32, F16 or BF16");
  return info;
}

Status WeightStore::upload(const formats::TensorInfo& info, void* dst) {
  const int64_t n = info.numel();
  TensorView src(info.data, *info.dtype, Shape{n});
  CpuExecContext cpu;
  if (*info.dtype == dtype_) return allocator_->copy_from_host(dst, info.data, info.nbytes);
  if (allocator_->device().kind == DeviceKind::kCpu)
    return ops::convert(cpu.ctx(), src, TensorView(dst, dtype_, Shape{n}));
  std::vector<uint8_t> staging(static_cast<std::size_t>(n) * dtype_size(dtype_));
  FATHOM_TRY(ops::convert(cpu.ctx(), src, TensorView(staging.data(), dtype_, Shape{n})));
  return allocator_->copy_from_host(dst, staging.data(), staging.size());
}

Result<TensorView> WeightStore::load(const formats::Checkpoint& ckpt, const std::string& name, const Shape& shape) {
  return load_concat(ckpt, {name}, shape);
}

Result<TensorView> WeightStore::load_concat(const formats::Checkpoint& ckpt, const std::vector<std::string>& names,
                                            const Shape& part_shape) {
  std::vector<const formats::TensorInfo*> infos;
  for (const auto& name : names) {
    FATHOM_ASSIGN_OR_RETURN(const formats::TensorInfo* info, find(ckpt, name, part_shape));
    infos.push_back(info);
  }
  const std::size_t part_bytes = static_cast<std::size_t>(part_shape.numel()) * dtype_size(dtype_);
  FATHOM_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(*allocator_, part_bytes * names.size(), account_));
  for (std::size_t i = 0; i < infos.size(); ++i) {
    Status s = upload(*infos[i], static_cast<uint8_t*>(buf.data()) + i * part_bytes);
    if (!s.ok()) {
      Error e = s.error();
      e.message = ckpt.file_of(names[i]).string() + ": tensor '" + names[i] + "': " + e.message;
      return e;
    }
  }
  Shape shape = part_shape;
  if (shape.rank == 0) shape = Shape{1};
  shape.dims[0] *= static_cast<int64_t>(names.size());
  TensorView view = buf.view(dtype_, shape);
  bytes_ += buf.size();
  buffers_.push_back(std::move(buf));
  return view;
}

Result<TensorView> WeightStore::load_rows(const formats::Checkpoint& ckpt, const std::vector<Part>& parts) {
  if (parts.empty()) return make_error(ErrorCode::kInvalidArgument, "WeightStore::load_rows: no parts");
  std::vector<const formats::TensorInfo*> infos;
  int64_t rows = 0;
  for (const Part& part : parts) {
    if (part.shape.rank != parts[0].shape.rank)
      return make_error(ErrorCode::kInvalidArgument, "WeightStore::load_rows: parts of different ranks");
    for (int d = 1; d < part.shape.rank; ++d)
      if (part.shape[d] != parts[0].shape[d])
        return make_error(ErrorCode::kInvalidArgument, "WeightStore::load_rows: parts of different trailing dims");
    FATHOM_ASSIGN_OR_RETURN(const formats::TensorInfo* info, find(ckpt, part.name, part.shape));
    infos.push_back(info);
    rows += part.shape.rank ? part.shape[0] : 1;
  }
  std::size_t total = 0;
  for (const Part& part : parts) total += static_cast<std::size_t>(part.shape.numel()) * dtype_size(dtype_);
  FATHOM_ASSIGN_OR_RETURN(Buffer buf, Buffer::allocate(*allocator_, total, account_));
  std::size_t offset = 0;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    Status s = upload(*infos[i], static_cast<uint8_t*>(buf.data()) + offset);
    if (!s.ok()) {
      Error e = s.error();
      e.message = ckpt.file_of(parts[i].name).string() + ": tensor '" + parts[i].name + "': " + e.message;
      return e;
    }
    offset += static_cast<std::size_t>(parts[i].shape.numel()) * dtype_size(dtype_);
  }
  Shape shape = parts[0].shape;
  if (shape.rank == 0) shape = Shape{1};
  shape.dims[0] = rows;
  TensorView view = buf.view(dtype_, shape);
  bytes_ += buf.size();
  buffers_.push_back(std::move(buf));
  return view;
}

}  // namespace fathom::models
