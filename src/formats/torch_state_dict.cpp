#include "formats/torch_state_dict.h"

#include <zip.h>

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "formats/torch_pickle.h"

namespace fathom::formats {
namespace {

// Deflate cannot expand data more than ~1032:1, so no honest record is larger than that times its
// compressed size; with compressed sizes bounded by the archive's, this bounds what a hostile archive can
// make us allocate.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kMaxPickleBytes = 1ull << 30;
constexpr uint64_t kMaxByteorderBytes = 64;
constexpr std::size_t kRecordAlignment = 64;  // each record's bytes start at a multiple of this in the buffer

Error failed(const std::filesystem::path& path, const std::string& what) {
  return make_error(ErrorCode::kLoadFailed, path.string() + ": " + what);
}

std::string zip_error_text(int code) {
  zip_error_t ze;
  zip_error_init_with_code(&ze, code);
  std::string s = zip_error_strerror(&ze);
  zip_error_fini(&ze);
  return s;
}

struct ZipDiscard {
  void operator()(zip_t* z) const { zip_discard(z); }
};
using ZipPtr = std::unique_ptr<zip_t, ZipDiscard>;

struct ZipFileClose {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

// One record of the archive whose size has been checked to be believable.
struct Record {
  uint64_t index = 0;
  uint64_t size = 0;
  std::string name;
};

class Archive {
 public:
  Archive(zip_t* zip, uint64_t archive_size, const std::filesystem::path& path)
      : zip_(zip), archive_size_(archive_size), path_(path) {}

  // The record called `name`, or nullopt when the archive has none.
  Result<std::optional<Record>> find(const std::string& name) const {
    const zip_int64_t i = zip_name_locate(zip_, name.c_str(), 0);
    if (i < 0) return std::optional<Record>();
    FATHOM_ASSIGN_OR_RETURN(Record r, stat(static_cast<uint64_t>(i)));
    return std::optional<Record>(std::move(r));
  }
  Result<Record> stat(uint64_t index) const;
  // Reads exactly r.size bytes into `out` (libzip checks the CRC once the record's end is read).
  Status read(const Record& r, std::byte* out) const;
  Result<std::optional<Record>> find_data_pkl() const;
  uint64_t archive_size() const { return archive_size_; }

 private:
  zip_t* zip_;
  uint64_t archive_size_;
  const std::filesystem::path& path_;
};

Result<Record> Archive::stat(uint64_t index) const {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(zip_, index, 0, &st) != 0) return failed(path_, std::string("zip: ") + zip_strerror(zip_));
  constexpr auto kNeeded = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
  if ((st.valid & kNeeded) != kNeeded) return failed(path_, "zip entry " + std::to_string(index) + " lacks its name or sizes");
  Record r{index, st.size, st.name};
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
    return failed(path_, "record '" + r.name + "' is encrypted");
  const bool stored = st.comp_method == ZIP_CM_STORE;
  if (!stored && st.comp_method != ZIP_CM_DEFLATE)
    return failed(path_, "record '" + r.name + "' uses zip compression method " + std::to_string(st.comp_method) +
                             " (stored and deflated records are read)");
  if (st.comp_size > archive_size_ || (stored && st.size != st.comp_size) ||
      (!stored && st.size > st.comp_size * kMaxDeflateRatio + kRecordAlignment))
    return failed(path_, "record '" + r.name + "' claims " + std::to_string(st.size) + " bytes from " +
                             std::to_string(st.comp_size) + " compressed, in an archive of " +
                             std::to_string(archive_size_) + ": damaged zip");
  return r;
}

Status Archive::read(const Record& r, std::byte* out) const {
  std::unique_ptr<zip_file_t, ZipFileClose> f(zip_fopen_index(zip_, r.index, 0));
  if (!f) return failed(path_, "cannot open record '" + r.name + "': " + zip_strerror(zip_));
  uint64_t done = 0;
  while (true) {
    std::byte extra{};
    std::byte* dst = done < r.size ? out + done : &extra;  // one read past the end: EOF (and the CRC check)
    const zip_int64_t n = zip_fread(f.get(), dst, done < r.size ? r.size - done : 1);
    if (n < 0) return failed(path_, "cannot read record '" + r.name + "': " + zip_file_strerror(f.get()));
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
    if (done > r.size) return failed(path_, "record '" + r.name + "' is longer than its zip entry says");
  }
  if (done != r.size)
    return failed(path_, "record '" + r.name + "' ends after " + std::to_string(done) + " of its " +
                             std::to_string(r.size) + " bytes");
  return Status::Ok();
}

// The one record named data.pkl or <prefix>/data.pkl.
Result<std::optional<Record>> Archive::find_data_pkl() const {
  const zip_int64_t n = zip_get_num_entries(zip_, 0);
  std::optional<Record> found;
  for (zip_int64_t i = 0; i < n; ++i) {
    const char* name = zip_get_name(zip_, static_cast<uint64_t>(i), 0);
    if (!name) continue;
    const std::string_view s(name);
    constexpr std::string_view kPkl = "data.pkl";
    if (s.size() < kPkl.size() || s.substr(s.size() - kPkl.size()) != kPkl) continue;
    if (s.size() > kPkl.size() && s[s.size() - kPkl.size() - 1] != '/') continue;
    if (found) return failed(path_, "holds several pickles ('" + found->name + "' and '" + std::string(s) + "')");
    FATHOM_ASSIGN_OR_RETURN(Record r, stat(static_cast<uint64_t>(i)));
    found = std::move(r);
  }
  return found;
}

// A storage record, read once however many tensors use it.
struct Storage {
  Record record;
  std::size_t offset = 0;  // where its bytes start in the file's buffer
};

bool is_row_major_contiguous(const PickledTensor& t) {
  int64_t expected = 1;
  for (std::size_t d = t.shape.size(); d-- > 0;) {
    if (t.shape[d] != 1 && t.stride[d] != expected) return false;
    expected *= t.shape[d];
  }
  return true;
}

Result<std::shared_ptr<const SafetensorsFile>> load(zip_t* zip, uint64_t archive_size, const std::filesystem::path& path) {
  const Archive archive(zip, archive_size, path);
  FATHOM_ASSIGN_OR_RETURN(std::optional<Record> pkl, archive.find_data_pkl());
  if (!pkl) return failed(path, "a zip archive without a data.pkl record, so not a torch.save checkpoint");
  const std::string prefix = pkl->name.substr(0, pkl->name.size() - std::string_view("data.pkl").size());

  FATHOM_ASSIGN_OR_RETURN(std::optional<Record> byteorder, archive.find(prefix + "byteorder"));
  if (byteorder) {
    if (byteorder->size > kMaxByteorderBytes) return failed(path, "record '" + byteorder->name + "' is too long");
    std::string text(byteorder->size, '\0');
    FATHOM_TRY(archive.read(*byteorder, reinterpret_cast<std::byte*>(text.data())));
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
    if (text != "little")
      return failed(path, "byteorder is '" + text + "'; fathom reads little-endian checkpoints only");
  }

  if (pkl->size > kMaxPickleBytes) return failed(path, "data.pkl of " + std::to_string(pkl->size) + " bytes is too large");
  std::vector<std::byte> pickle(pkl->size);
  FATHOM_TRY(archive.read(*pkl, pickle.data()));
  FATHOM_ASSIGN_OR_RETURN(const std::vector<PickledTensor> pickled,
                          evaluate_state_dict_pickle(pickle, path.string() + ": " + pkl->name));

  // Validate every tensor against its storage and record, and lay the records out in one buffer.
  std::map<std::string, Storage, std::less<>> storages;
  std::size_t total = 0;
  for (const PickledTensor& t : pickled) {
    const std::string where = "tensor '" + t.name + "'";
    if (t.storage_numel > std::numeric_limits<uint64_t>::max() / t.element_size)
      return failed(path, where + ": storage of " + std::to_string(t.storage_numel) + " elements overflows");
    uint64_t numel = 1;
    for (int64_t d : t.shape) {
      const auto v = static_cast<uint64_t>(d);
      if (v != 0 && numel > (uint64_t{1} << 62) / v / t.element_size) return failed(path, where + ": shape overflows");
      numel *= v;
    }
    if (numel > 0 && !is_row_major_contiguous(t))
      return failed(path, where + " is not contiguous (size " + dims_string(t.shape) + ", stride " + dims_string(t.stride) +
                              "); fathom reads row-major contiguous tensors only");
    if (t.storage_offset > t.storage_numel || numel > t.storage_numel - t.storage_offset)
      return failed(path, where + ": storage_offset " + std::to_string(t.storage_offset) + " + " + std::to_string(numel) +
                              " elements exceeds its storage of " + std::to_string(t.storage_numel) + " " + t.dtype_name +
                              " elements");
    auto it = storages.find(t.storage_key);
    if (it == storages.end()) {
      FATHOM_ASSIGN_OR_RETURN(std::optional<Record> rec, archive.find(prefix + "data/" + t.storage_key));
      if (!rec) return failed(path, where + " needs storage record '" + prefix + "data/" + t.storage_key + "', which the archive lacks");
      total = (total + kRecordAlignment - 1) / kRecordAlignment * kRecordAlignment;
      const uint64_t limit = kMaxDeflateRatio * archive.archive_size() + kRecordAlignment;
      if (total > limit || rec->size > limit - total)
        return failed(path, "storage records claim more bytes than an archive of " +
                                std::to_string(archive.archive_size()) + " could hold: damaged zip");
      it = storages.emplace(t.storage_key, Storage{*rec, total}).first;
      total += static_cast<std::size_t>(rec->size);
    }
    const uint64_t storage_bytes = t.storage_numel * t.element_size;
    if (storage_bytes > it->second.record.size)
      return failed(path, "storage record '" + it->second.record.name + "' holds " + std::to_string(it->second.record.size) +
                              " bytes, but " + where + " uses it as a storage of " + std::to_string(t.storage_numel) +
                              " " + t.dtype_name + " elements (" + std::to_string(storage_bytes) + " bytes)");
  }

  std::vector<std::byte> bytes(total);
  for (const auto& [key, s] : storages) FATHOM_TRY(archive.read(s.record, bytes.data() + s.offset));

  std::map<std::string, TensorInfo, std::less<>> tensors;
  for (const PickledTensor& t : pickled) {
    TensorInfo info;
    info.name = t.name;
    info.dtype_name = t.dtype_name;
    info.dtype = dtype_from_name(t.dtype_name);
    info.shape = t.shape;
    info.nbytes = static_cast<std::size_t>(info.numel()) * t.element_size;
    info.data = bytes.data() + storages.find(t.storage_key)->second.offset + t.storage_offset * t.element_size;
    tensors.insert_or_assign(t.name, std::move(info));
  }
  return SafetensorsFile::adopt(path, std::move(bytes), std::move(tensors));
}

}  // namespace

Result<std::shared_ptr<const SafetensorsFile>> read_torch_state_dict(const std::filesystem::path& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return failed(path, "cannot open: " + ec.message());
  int code = 0;
  ZipPtr zip(zip_open(path.c_str(), ZIP_RDONLY, &code));
  if (!zip) return failed(path, "not a readable zip archive (a torch.save checkpoint): " + zip_error_text(code));
  return load(zip.get(), size, path);
}

Result<std::shared_ptr<const SafetensorsFile>> parse_torch_state_dict(const std::byte* image, std::size_t size,
                                                                      const std::filesystem::path& path) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t* src = zip_source_buffer_create(image, size, 0, &ze);
  if (!src) {
    zip_error_fini(&ze);
    return failed(path, "zip: cannot read the image");
  }
  ZipPtr zip(zip_open_from_source(src, ZIP_RDONLY, &ze));
  if (!zip) {
    zip_source_free(src);
    std::string why = zip_error_strerror(&ze);
    zip_error_fini(&ze);
    return failed(path, "not a readable zip archive (a torch.save checkpoint): " + why);
  }
  zip_error_fini(&ze);
  return load(zip.get(), size, path);
}

}  // namespace fathom::formats
