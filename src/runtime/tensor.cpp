#include "runtime/tensor.h"

#include <stdexcept>

namespace fathom {

Shape::Shape(std::initializer_list<int64_t> d) {
  if (d.size() > kMaxRank) throw std::invalid_argument("Shape: more than 4 dimensions");
  for (int64_t v : d) dims[static_cast<std::size_t>(rank++)] = v;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[static_cast<std::size_t>(i)];
  return n;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[static_cast<std::size_t>(i)]);
  }
  return s + "]";
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dims[static_cast<std::size_t>(i)] != o.dims[static_cast<std::size_t>(i)]) return false;
  return true;
}

std::string TensorView::describe() const {
  return std::string(dtype_name(dtype)) + shape.to_string() + "@" + device.to_string();
}

}  // namespace fathom
