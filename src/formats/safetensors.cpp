#include "formats/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "formats/json_file.h"
#include "formats/torch_state_dict.h"

namespace fathom::formats {
namespace {

constexpr std::size_t kMaxHeader = 100u << 20;  // safetensors' own limit is 100 MB

std::optional<std::size_t> safetensors_elem_size(const std::string& d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return std::nullopt;
}

Error damaged(const std::filesystem::path& path, const std::string& what) {
  return make_error(ErrorCode::kLoadFailed, path.string() + ": damaged safetensors file: " + what);
}

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::optional<DType> dtype_from_name(std::string_view name) {
  if (name == "F32") return DType::kF32;
  if (name == "F16") return DType::kF16;
  if (name == "BF16") return DType::kBF16;
  if (name == "I32") return DType::kI32;
  if (name == "I64") return DType::kI64;
  return std::nullopt;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string TensorInfo::shape_string() const { return dims_string(shape); }

Result<std::map<std::string, TensorInfo, std::less<>>> SafetensorsFile::parse(const std::byte* base, std::size_t size,
                                                                              const std::filesystem::path& path,
                                                                              std::map<std::string, std::string>* metadata) {
  if (size < 8) return damaged(path, "file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | static_cast<uint8_t>(base[i]);  // little-endian
  if (header_len > kMaxHeader || header_len > size - 8)
    return damaged(path, "header length " + std::to_string(header_len) + " does not fit the file of " +
                             std::to_string(size) + " bytes");
  const char* hdr = reinterpret_cast<const char*>(base + 8);
  auto j = nlohmann::json::parse(hdr, hdr + header_len, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return damaged(path, "header is not a JSON object");
  const std::byte* data = base + 8 + header_len;
  const std::size_t data_size = size - 8 - header_len;
  std::map<std::string, TensorInfo, std::less<>> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& e = it.value();
    if (name == "__metadata__") {
      if (metadata && e.is_object())
        for (auto m = e.begin(); m != e.end(); ++m)
          if (m.value().is_string()) (*metadata)[m.key()] = m.value().get<std::string>();
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (!e.is_object()) return damaged(path, where + ": entry is not an object");
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto off = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) return damaged(path, where + ": missing dtype");
    if (sh == e.end() || !sh->is_array()) return damaged(path, where + ": missing shape");
    if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return damaged(path, where + ": data_offsets must be two non-negative integers");
    TensorInfo info;
    info.name = name;
    info.dtype_name = dt->get<std::string>();
    auto esize = safetensors_elem_size(info.dtype_name);
    if (!esize) return damaged(path, where + ": unknown dtype '" + info.dtype_name + "'");
    info.dtype = dtype_from_name(info.dtype_name);
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned()) return damaged(path, where + ": shape entries must be non-negative integers");
      uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > std::numeric_limits<uint64_t>::max() / v / *esize)
        return damaged(path, where + ": shape overflows");
      numel *= v;
      info.shape.push_back(static_cast<int64_t>(v));
    }
    const uint64_t begin = (*off)[0].get<uint64_t>(), end = (*off)[1].get<uint64_t>();
    if (begin > end || end > data_size)
      return damaged(path, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                               "] outside the data area of " + std::to_string(data_size) + " bytes");
    if (end - begin != numel * *esize)
      return damaged(path, where + ": holds " + std::to_string(end - begin) + " bytes but shape " + info.shape_string() +
                               " of " + info.dtype_name + " needs " + std::to_string(numel * *esize));
    info.data = data + begin;
    info.nbytes = static_cast<std::size_t>(end - begin);
    out.emplace(name, std::move(info));
  }
  return out;
}

Result<std::shared_ptr<const SafetensorsFile>> SafetensorsFile::open(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kNotFound, path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return make_error(ErrorCode::kLoadFailed, path.string() + ": not a regular file");
  }
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  f->size_ = static_cast<std::size_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      ::close(fd);
      return make_error(ErrorCode::kLoadFailed, path.string() + ": mmap failed: " + std::strerror(errno));
    }
    f->map_ = m;
  }
  ::close(fd);
  FATHOM_ASSIGN_OR_RETURN(f->tensors_, parse(static_cast<const std::byte*>(f->map_), f->size_, path, &f->metadata_));
  return std::shared_ptr<const SafetensorsFile>(std::move(f));
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::adopt(std::filesystem::path path, std::vector<std::byte> bytes,
                                                              std::map<std::string, TensorInfo, std::less<>> tensors) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = std::move(path);
  f->size_ = bytes.size();
  f->owned_ = std::move(bytes);  // keeps the buffer the tensors point into
  f->tensors_ = std::move(tensors);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

Result<Checkpoint> Checkpoint::open(const std::filesystem::path& dir) {
  Checkpoint c;
  std::error_code ec;
  const auto single = dir / "model.safetensors";
  const auto index_path = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single, ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto f, SafetensorsFile::open(single));
    c.files_.push_back(f);
    for (const auto& [name, info] : f->tensors()) c.index_[name] = {&info, 0};
    c.description_ = single.string();
    return c;
  }
  if (!std::filesystem::exists(index_path, ec)) {
    std::string hint;
    for (const char* other : {"pytorch_model.bin", "model.bin", "tf_model.h5", "model.onnx", "model.gguf"})
      if (std::filesystem::exists(dir / other, ec)) hint += std::string(" (found ") + other + ", which is not supported: convert it to safetensors)";
    return make_error(ErrorCode::kLoadFailed,
                      dir.string() + ": no model.safetensors or model.safetensors.index.json" + hint);
  }
  FATHOM_ASSIGN_OR_RETURN(auto index, read_json_file(index_path));
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object() || wm->empty())
    return make_error(ErrorCode::kLoadFailed, index_path.string() + ": `weight_map` is missing or empty");
  std::map<std::string, std::size_t> file_ids;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string())
      return make_error(ErrorCode::kLoadFailed, index_path.string() + ": weight_map entry for '" + it.key() + "' is not a file name");
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      return make_error(ErrorCode::kLoadFailed, index_path.string() + ": shard name '" + shard + "' must be a plain file name");
    auto fid = file_ids.find(shard);
    if (fid == file_ids.end()) {
      auto opened = SafetensorsFile::open(dir / shard);
      if (!opened.ok()) {
        Error e = opened.error();
        e.code = ErrorCode::kLoadFailed;
        e.message = index_path.string() + " names shard " + shard + ": " + e.message;
        return e;
      }
      c.files_.push_back(std::move(opened).value());
      fid = file_ids.emplace(shard, c.files_.size() - 1).first;
    }
    const TensorInfo* info = c.files_[fid->second]->find(it.key());
    if (!info)
      return make_error(ErrorCode::kLoadFailed, index_path.string() + ": tensor '" + it.key() + "' is mapped to " + shard +
                                                    ", which does not contain it");
    c.index_[it.key()] = {info, fid->second};
  }
  c.description_ = index_path.string() + " (" + std::to_string(c.files_.size()) + " shards)";
  return c;
}

namespace {

// The first bytes of a file (fewer when it is shorter), to tell its format.
Result<std::string> read_head(const std::filesystem::path& file, std::size_t n) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(ErrorCode::kLoadFailed, file.string() + ": cannot open: " + std::strerror(errno));
  std::string head(n, '\0');
  const ssize_t got = ::read(fd, head.data(), n);
  ::close(fd);
  head.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return head;
}

}  // namespace

Result<Checkpoint> Checkpoint::open_file(const std::filesystem::path& file) {
  FATHOM_ASSIGN_OR_RETURN(const std::string head, read_head(file, 4));
  // torch.save's legacy format pickles its magic number first: PROTO 2, LONG1 of 10 bytes. (As a safetensors
  // header length these bytes would exceed the 100 MB limit, so no safetensors file starts so.)
  if (head == std::string_view("\x80\x02\x8a\x0a", 4))
    return make_error(ErrorCode::kLoadFailed, file.string() + ": a bare pickle (torch.save of torch < 1.6, or "
                                                              "_use_new_zipfile_serialization=False), which fathom "
                                                              "does not read: re-save it with torch >= 1.6 or as safetensors");
  auto opened = head == std::string_view("PK\x03\x04", 4) ? read_torch_state_dict(file) : SafetensorsFile::open(file);
  if (!opened.ok()) {
    Error e = opened.error();
    e.code = ErrorCode::kLoadFailed;  // SafetensorsFile::open says kNotFound for a file it cannot open
    return e;
  }
  Checkpoint c;
  c.files_.push_back(std::move(opened).value());
  for (const auto& [name, info] : c.files_[0]->tensors()) c.index_[name] = {&info, 0};
  c.description_ = file.string();
  return c;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.first;
}

std::filesystem::path Checkpoint::file_of(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? std::filesystem::path() : files_[it->second.second]->path();
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : index_) out.push_back(name);
  return out;
}

}  // namespace fathom::formats
