#include "hub/cache_layout.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "hub/model_ref.h"

namespace fathom::hub {
namespace fs = std::filesystem;
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

fs::path home_dir() {
  if (const char* h = env("HOME")) return h;
  return "/root";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

// A temporary name beside `path`, unique across processes and threads.
fs::path temp_beside(const fs::path& path) {
  static std::atomic<unsigned> counter{0};
  return path.string() + ".tmp." + std::to_string(getpid()) + "." + std::to_string(counter++);
}

Error fs_error(const std::string& what, const fs::path& path, const std::error_code& ec) {
  return make_error(ErrorCode::kLoadFailed, "cannot " + what + " " + path.string() + ": " + ec.message());
}

}  // namespace

fs::path hf_home() {
  if (const char* h = env("HF_HOME")) return h;
  if (const char* x = env("XDG_CACHE_HOME")) return fs::path(x) / "huggingface";
  return home_dir() / ".cache" / "huggingface";
}

fs::path default_cache_dir() {
  if (const char* c = env("HF_HUB_CACHE")) return c;
  if (const char* c = env("HUGGINGFACE_HUB_CACHE")) return c;
  return hf_home() / "hub";
}

std::string repo_folder_name(const std::string& repo) {
  std::string out = "models--";
  for (char c : repo) {
    if (c == '/') out += "--";
    else out += c;
  }
  return out;
}

RepoCache::RepoCache(fs::path cache_dir, std::string repo)
    : cache_dir_(std::move(cache_dir)), root_(cache_dir_ / repo_folder_name(repo)), repo_(std::move(repo)) {}

fs::path RepoCache::blob(const std::string& etag) const { return root_ / "blobs" / etag; }
fs::path RepoCache::incomplete(const std::string& etag) const { return root_ / "blobs" / (etag + ".incomplete"); }
fs::path RepoCache::snapshot(const std::string& commit) const { return root_ / "snapshots" / commit; }
fs::path RepoCache::ref_file(const std::string& revision) const { return root_ / "refs" / revision; }
fs::path RepoCache::lock_file(const std::string& etag) const {
  return cache_dir_ / ".locks" / repo_folder_name(repo_) / (etag + ".lock");
}

std::optional<std::string> RepoCache::cached_commit(const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  std::ifstream in(ref_file(revision));
  if (!in) return std::nullopt;
  std::stringstream s;
  s << in.rdbuf();
  std::string commit = trim(s.str());
  if (commit.empty()) return std::nullopt;
  return commit;
}

Status RepoCache::write_ref(const std::string& revision, const std::string& commit) const {
  if (revision == commit) return Status::Ok();
  const fs::path path = ref_file(revision);
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return fs_error("create", path.parent_path(), ec);
  const fs::path tmp = temp_beside(path);
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << commit;  // no newline, as huggingface_hub writes it
    if (!out) return make_error(ErrorCode::kLoadFailed, "cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);
  if (ec) return fs_error("write", path, ec);
  return Status::Ok();
}

Status RepoCache::link(const std::string& commit, const std::string& path, const std::string& etag) const {
  const fs::path pointer = snapshot(commit) / path;
  std::error_code ec;
  fs::create_directories(pointer.parent_path(), ec);
  if (ec) return fs_error("create", pointer.parent_path(), ec);
  const fs::path target = blob(etag).lexically_relative(pointer.parent_path());
  const fs::path tmp = temp_beside(pointer);
  fs::create_symlink(target, tmp, ec);
  if (ec) return fs_error("create the symlink", tmp, ec);
  fs::rename(tmp, pointer, ec);
  if (ec) return fs_error("create", pointer, ec);
  return Status::Ok();
}

Result<BlobLock> BlobLock::acquire(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return fs_error("create", path.parent_path(), ec);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return make_error(ErrorCode::kLoadFailed, "cannot open the lock file " + path.string() + ": " + std::strerror(errno));
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      return make_error(ErrorCode::kLoadFailed, "cannot lock " + path.string() + ": " + why);
    }
  }
  return BlobLock(fd);
}

BlobLock::~BlobLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);
    ::close(fd_);
  }
}

}  // namespace fathom::hub
