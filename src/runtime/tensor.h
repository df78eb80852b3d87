#pragma once
// Shape and TensorView: a non-owning view of a contiguous, row-major tensor of up to 4 dimensions on a
// device. Views never own memory; whoever made the memory (a Buffer, a mapped file) keeps it alive.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "base/dtype.h"
#include "runtime/device.h"

namespace fathom {

struct Shape {
  static constexpr int kMaxRank = 4;
  std::array<int64_t, kMaxRank> dims{};
  int rank = 0;

  Shape() = default;
  Shape(std::initializer_list<int64_t> d);  // at most kMaxRank dims (more throws std::invalid_argument)
  int64_t operator[](int i) const { return dims[static_cast<std::size_t>(i)]; }
  int64_t numel() const;
  std::string to_string() const;  // "[2, 3]"
  bool operator==(const Shape& o) const;
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;
  Device device;

  TensorView() = default;
  TensorView(const void* d, DType t, Shape s, Device dev = Device::cpu())
      : data(const_cast<void*>(d)), dtype(t), shape(s), device(dev) {}

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
  int64_t numel() const { return shape.numel(); }
  std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i]; }
  // Last dimension, and the product of all the others (a [rows, cols] reading of the tensor).
  int64_t cols() const { return shape.rank ? shape[shape.rank - 1] : 1; }
  int64_t rows() const { return shape.rank ? numel() / (cols() ? cols() : 1) : 1; }
  // "float32[2, 3]@cpu"
  std::string describe() const;
};

}  // namespace fathom
