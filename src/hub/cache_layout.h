#pragma once
// The Hugging Face Hub cache, laid out exactly as the huggingface_hub Python library lays it out, so that
// files transformers / sentence-transformers downloaded are reused by fathom and the other way round:
//
//   <cache>/models--ORG--NAME/blobs/<etag>                  file contents, named by ETag (LFS: sha256)
//   <cache>/models--ORG--NAME/blobs/<etag>.incomplete       a download in progress (resumed, never read)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<path>     relative symlink to ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/<revision>               the commit hash the revision pointed to
//   <cache>/.locks/models--ORG--NAME/<etag>.lock            flock()ed while a blob is downloaded
//
// <cache> is $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. Thread-safety: RepoCache is immutable;
// its methods touch only the file system (concurrent downloads of one blob are serialised by BlobLock).
#include <filesystem>
#include <optional>
#include <string>

#include "base/error.h"

namespace fathom::hub {

// The cache directory the environment names (see above).
std::filesystem::path default_cache_dir();
// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface (where the token file lives).
std::filesystem::path hf_home();
// "models--ORG--NAME".
std::string repo_folder_name(const std::string& repo);

class RepoCache {
 public:
  RepoCache(std::filesystem::path cache_dir, std::string repo);

  const std::filesystem::path& cache_dir() const { return cache_dir_; }
  const std::filesystem::path& root() const { return root_; }  // <cache>/models--ORG--NAME
  std::filesystem::path blob(const std::string& etag) const;
  std::filesystem::path incomplete(const std::string& etag) const;
  std::filesystem::path snapshot(const std::string& commit) const;
  std::filesystem::path ref_file(const std::string& revision) const;
  std::filesystem::path lock_file(const std::string& etag) const;

  // The commit `revision` resolves to from the cache alone: the revision itself when it is a commit hash,
  // else the content of refs/<revision>; nullopt when there is no such ref.
  std::optional<std::string> cached_commit(const std::string& revision) const;
  // Writes refs/<revision> = commit (atomically); a no-op when revision is the commit hash itself.
  Status write_ref(const std::string& revision, const std::string& commit) const;
  // snapshots/<commit>/<path> -> relative link to blobs/<etag>, replacing what was there (atomically).
  Status link(const std::string& commit, const std::string& path, const std::string& etag) const;

 private:
  std::filesystem::path cache_dir_, root_;
  std::string repo_;
};

// An exclusive flock() on a lock file (created with its folders) held for the object's lifetime. Same file
// and lock kind as huggingface_hub's filelock, so a Python download and a fathom download of one blob do
// not interleave. Blocks until the lock is free.
class BlobLock {
 public:
  static Result<BlobLock> acquire(const std::filesystem::path& path);
  BlobLock(BlobLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  BlobLock& operator=(BlobLock&&) = delete;
  BlobLock(const BlobLock&) = delete;
  ~BlobLock();

 private:
  explicit BlobLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace fathom::hub
