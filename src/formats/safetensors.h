#pragma once
// Hugging Face safetensors files, memory-mapped, and model checkpoints made of them
// (`model.safetensors`, or shards listed by `model.safetensors.index.json`, or one weights file given by
// name, which may also be a PyTorch zip checkpoint: see torch_state_dict.h).
//
// Everything in a header is validated against the file before use: header length, JSON, dtype names,
// shapes, offsets inside the data area and byte counts matching shape x dtype. A damaged file is a
// kLoadFailed error naming the file (and the tensor), never a crash.
// A SafetensorsFile either maps a safetensors file (open()) or owns, in memory, tensors that a reader of
// another format parsed (adopt()); both look the same to their users.
// Thread-safety: opened files and checkpoints are immutable; reads from many threads are fine.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"

namespace fathom::formats {

// fathom's dtype for a tensor dtype name as safetensors writes them ("F32", "F16", "BF16", "I32", "I64");
// nullopt for the others ("F64", "U8", ...). Torch checkpoints name their storages the same way.
std::optional<DType> dtype_from_name(std::string_view name);
// "[768, 3072]": a shape or stride list as the errors of both checkpoint formats print it.
std::string dims_string(const std::vector<int64_t>& dims);

struct TensorInfo {
  std::string name;
  std::string dtype_name;        // as written in the file: "F32", "BF16", "I64", ...
  std::optional<DType> dtype;    // fathom's dtype when it has one (F32, F16, BF16, I32, I64)
  std::vector<int64_t> shape;
  const void* data = nullptr;    // into the mapping; valid while the file is alive
  std::size_t nbytes = 0;

  int64_t numel() const;
  std::string shape_string() const;  // "[768, 3072]"
};

class SafetensorsFile {
 public:
  static Result<std::shared_ptr<const SafetensorsFile>> open(const std::filesystem::path& path);
  // Holds tensors parsed from another format (a PyTorch checkpoint): every TensorInfo::data must point
  // into `bytes` (nbytes of it), which the object owns from now on (moving a vector keeps its buffer, so
  // such pointers stay valid); nothing is mapped, so nothing is unmapped. path() is `path`, file_size()
  // is bytes.size() and metadata() is empty.
  static std::shared_ptr<const SafetensorsFile> adopt(std::filesystem::path path, std::vector<std::byte> bytes,
                                                      std::map<std::string, TensorInfo, std::less<>> tensors);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const TensorInfo* find(std::string_view name) const;
  const std::map<std::string, TensorInfo, std::less<>>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t file_size() const { return size_; }

  // Parses a complete file image (used by open(); exposed for tests). `base` must outlive the result.
  static Result<std::map<std::string, TensorInfo, std::less<>>> parse(const std::byte* base, std::size_t size,
                                                                      const std::filesystem::path& path,
                                                                      std::map<std::string, std::string>* metadata);

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;             // the mapping of open(); null for adopt()
  std::size_t size_ = 0;
  std::vector<std::byte> owned_;    // adopt()'s bytes, which its tensors point into
  std::map<std::string, TensorInfo, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// The weights of a model directory.
class Checkpoint {
 public:
  // Opens DIR/model.safetensors, else DIR/model.safetensors.index.json and every shard it names. Errors
  // name the file: no weights found (mentioning unsupported formats present, e.g. pytorch_model.bin),
  // invalid index, a missing shard, a tensor the index maps to a shard that lacks it.
  static Result<Checkpoint> open(const std::filesystem::path& dir);
  // Opens one weights file: a PyTorch zip checkpoint when it starts with the zip magic "PK\x03\x04"
  // (torch.save of a state dict, e.g. bge-m3's colbert_linear.pt; see torch_state_dict.h), else a
  // safetensors file, whatever its extension. description() is the file's path. Every error, a missing
  // file included, is kLoadFailed naming the file.
  static Result<Checkpoint> open_file(const std::filesystem::path& file);

  const TensorInfo* find(std::string_view name) const;
  // The file holding `name` (empty when absent).
  std::filesystem::path file_of(std::string_view name) const;
  std::vector<std::string> names() const;
  const std::vector<std::shared_ptr<const SafetensorsFile>>& files() const { return files_; }
  // A readable description for errors: "model.safetensors" or "model.safetensors.index.json (2 shards)"
  // (open()), or the file's path (open_file()).
  const std::string& description() const { return description_; }

 private:
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, std::pair<const TensorInfo*, std::size_t>, std::less<>> index_;  // name -> (info, file)
  std::string description_;
};

}  // namespace fathom::formats
