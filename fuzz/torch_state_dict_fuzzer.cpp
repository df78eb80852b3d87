// Fuzzes the PyTorch checkpoint reader (formats/torch_state_dict.h), a damaged or hostile .pt file.
// Input: [mode] payload.
//   mode even: payload is a data.pkl pickle, evaluated by the restricted interpreter (torch_pickle.h):
//              mutations reach the opcodes directly (a zip's CRC would reject most of them).
//   mode odd:  payload is a whole zip image for parse_torch_state_dict: the archive layout, records,
//              byteorder and the tensors' checks against their storages.
// Whatever parses must describe bytes inside what the result owns; nothing may execute or crash.
#include <cstdlib>
#include <cstring>
#include <vector>

#include "formats/torch_pickle.h"
#include "formats/torch_state_dict.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  // A private copy, so that ASan sees reads past the payload's end.
  std::vector<std::byte> payload(size - 1);
  if (size > 1) std::memcpy(payload.data(), data + 1, size - 1);
  if (mode % 2 == 0) {
    auto tensors = fathom::formats::evaluate_state_dict_pickle(payload, "fuzz.pt: data.pkl");
    if (!tensors.ok()) return 0;
    for (const auto& t : *tensors)
      if (t.shape.size() != t.stride.size() || t.element_size == 0 || t.dtype_name.empty()) std::abort();
    return 0;
  }
  auto file = fathom::formats::parse_torch_state_dict(payload.data(), payload.size(), "fuzz.pt");
  if (!file.ok()) return 0;
  for (const auto& [name, info] : (*file)->tensors()) {
    if (info.nbytes > (*file)->file_size()) std::abort();
    (void)info.numel();
    // Touch the first and last byte of each tensor: out of bounds would be reported by ASan.
    if (info.nbytes > 0) {
      const auto* p = static_cast<const std::byte*>(info.data);
      volatile std::byte a = p[0], b = p[info.nbytes - 1];
      (void)a;
      (void)b;
    }
  }
  return 0;
}
