// Fuzzes the safetensors parser on arbitrary file images (a damaged or hostile model.safetensors): header
// length, header JSON, dtypes, shapes and offsets. Whatever parses must describe bytes inside the image.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A private copy, so that ASan sees reads past the image's end.
  std::vector<std::byte> image(size);
  if (size) std::memcpy(image.data(), data, size);
  std::map<std::string, std::string> metadata;
  auto tensors = fathom::formats::SafetensorsFile::parse(image.data(), image.size(), "fuzz.safetensors", &metadata);
  if (!tensors.ok()) return 0;
  const std::byte* begin = image.data();
  const std::byte* end = begin + image.size();
  for (const auto& [name, info] : *tensors) {
    const auto* p = static_cast<const std::byte*>(info.data);
    if (info.nbytes > 0 && (p < begin || p > end || info.nbytes > static_cast<size_t>(end - p))) std::abort();
    (void)info.numel();
    (void)info.shape_string();
    // Touch the first and last byte of each tensor: out of bounds would be reported by ASan.
    if (info.nbytes > 0) {
      volatile std::byte a = p[0], b = p[info.nbytes - 1];
      (void)a;
      (void)b;
    }
  }
  return 0;
}
