#pragma once
// PyTorch checkpoints written by `torch.save(module.state_dict(), path)` in the zip format of torch >= 1.6
// (e.g. bge-m3's sparse_linear.pt {"weight": [1, 1024], "bias": [1]} and colbert_linear.pt), read without
// executing anything and returned as an in-memory SafetensorsFile (SafetensorsFile::adopt), so that they
// look like any other checkpoint file (Checkpoint::open_file picks this reader by the zip magic).
//
// The archive (read with libzip) holds, under one prefix folder of any name:
//   <prefix>/data.pkl      the state dict's pickle, evaluated by the restricted interpreter of
//                          torch_pickle.h (allowlisted globals only; anything else is an error naming it)
//   <prefix>/data/<key>    one record per storage: its raw element bytes
//   <prefix>/byteorder     optional; must be "little" when present (torch writes it since 2.1)
// Other records (version, .format_version, .data/serialization_id, ...) are ignored. Records may be
// stored (as torch writes them) or deflated.
//
// Each tensor must be row-major contiguous (strides of size-1 dimensions are free, as in torch) and lie
// inside its storage: storage_offset + numel <= the storage's numel <= the record's size / element size.
// Dtypes follow the storage class: Float/Half/BFloat16/Long/Int -> "F32"/"F16"/"BF16"/"I64"/"I32" with
// fathom's DType; Double/Short/Char/Byte/Bool -> "F64"/"I16"/"I8"/"U8"/"BOOL" with no DType. Data is
// little-endian, copied into memory owned by the returned file (each referenced record is read once;
// tensors sharing a storage point into the same bytes).
// Every malformed input (not a zip, no data.pkl or several, a missing or short record, a damaged pickle,
// a byteorder other than little) is a kLoadFailed error naming the file, never a crash.
// Thread-safety: a pure function of the file; the result is immutable.
#include <cstddef>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "formats/safetensors.h"

namespace fathom::formats {

// Reads the torch zip checkpoint at `path`.
Result<std::shared_ptr<const SafetensorsFile>> read_torch_state_dict(const std::filesystem::path& path);

// The same for a zip image in memory (fuzzing, tests); `path` only names it in errors and becomes the
// result's path(). The result owns copies of the bytes it needs: `image` may go away afterwards.
Result<std::shared_ptr<const SafetensorsFile>> parse_torch_state_dict(const std::byte* image, std::size_t size,
                                                                      const std::filesystem::path& path);

}  // namespace fathom::formats
