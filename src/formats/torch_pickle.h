#pragma once
// The pickle of a PyTorch state dict (the `data.pkl` record of a torch.save zip), evaluated by a restricted
// interpreter that never executes anything: it knows the opcodes of pickle protocols 2 to 5 that torch
// emits and a fixed allowlist of globals, each given a meaning here rather than looked up:
//   collections.OrderedDict                 called with () -> an empty dict (its BUILD state, e.g. the
//                                           `_metadata` attribute, is ignored)
//   torch._utils._rebuild_tensor_v2         (storage, storage_offset, size, stride, requires_grad,
//                                           backward_hooks[, metadata]) -> a tensor
//   torch._utils._rebuild_tensor            (storage, storage_offset, size, stride) -> a tensor
//   torch._utils._rebuild_parameter         (tensor, requires_grad, backward_hooks) -> that tensor
//   torch.<Float|Half|BFloat16|Double|Long|Int|Short|Char|Byte|Bool>Storage   storage classes, only
//                                           inside a persistent id
// A storage is the persistent id (BINPERSID) ('storage', <storage class>, key, location, numel); its bytes
// are the record <prefix>/data/<key>, which this file does not read (see torch_state_dict.h).
// Any other global is an error naming it; so is every malformed input (truncation, stack underflow, a bad
// memo index, wrong argument types), with caps on the stack, memo and object counts. Values live in an
// arena owned by one evaluation, so self-referencing pickles cannot leak.
// Thread-safety: a pure function of its input.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

// One entry of the state dict, as the pickle describes it. Nothing is validated against the storage's
// bytes here; shape and stride are as pickled (sizes >= 0, same rank), in elements.
struct PickledTensor {
  std::string name;            // the state dict key
  std::string storage_key;     // the record's name under <prefix>/data/
  std::string dtype_name;      // safetensors' name of the storage class: "F32", "F16", "BF16", "I64", ...
  std::size_t element_size = 0;
  uint64_t storage_numel = 0;  // elements the storage holds, per its persistent id
  uint64_t storage_offset = 0; // the tensor's first element within its storage
  std::vector<int64_t> shape;
  std::vector<int64_t> stride;
};

// Evaluates `pickle`, which must evaluate to a dict (OrderedDict or plain) of string -> tensor, and returns
// its entries in pickle order (a repeated key keeps its last value, as Python's dict does). Errors are
// kLoadFailed, their message starting with `where` (e.g. "model.pt: data.pkl").
Result<std::vector<PickledTensor>> evaluate_state_dict_pickle(std::span<const std::byte> pickle, const std::string& where);

}  // namespace fathom::formats
