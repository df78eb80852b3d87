#pragma once
// A local stand-in for the Hugging Face Hub, for tests (the real hub is not reachable from CI). It speaks the
// subset fathom's hub client uses:
//   GET  /api/models/{org}/{name}/revision/{rev}   -> {"id", "sha", "siblings": [{"rfilename"}]}
//   HEAD/GET /{org}/{name}/resolve/{rev}/{path}     -> non-LFS: 200, ETag "<git blob sha1>", X-Repo-Commit
//                                                     LFS (*.safetensors): 302 to /cdn/<sha256> with
//                                                     X-Linked-Etag "<sha256>", X-Linked-Size, X-Repo-Commit
//   GET  /cdn/{sha256}                              -> the content, honouring Range (206)
// Errors carry X-Error-Code as the hub's do: RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo (401
// without the token for a gated repository's files). Faults can be injected: a transfer cut after N bytes
// (the server closes the connection), content that does not match its sha256, a file that 404s although
// listed. Every request is recorded ("GET /path" plus " range=bytes=N-" when a Range header came).
// Thread-safety: configure before start(); requests() and the fault setters may be called while serving.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
}

namespace fathom::testing {

class FakeHub {
 public:
  FakeHub();
  ~FakeHub();
  FakeHub(const FakeHub&) = delete;
  FakeHub& operator=(const FakeHub&) = delete;

  // Serves the files under `dir` (recursively) as commit `sha` (40 hex) of `repo`, reachable by the
  // revision names `branches` and by the sha itself. `extra` adds files by content (path -> bytes).
  void add_commit(const std::string& repo, const std::filesystem::path& dir, const std::string& sha,
                  const std::vector<std::string>& branches, const std::map<std::string, std::string>& extra = {});
  // The repository's files need "Authorization: Bearer <token>" (the API listing does not, as on the hub).
  void set_gated(const std::string& repo, const std::string& token);
  // The next `times` transfers of `path` (any repo) end after `bytes` bytes of the body: the server closes.
  void cut_transfer(const std::string& path, std::uint64_t bytes, int times = 1);
  // `path` is served with one byte changed (its X-Linked-Etag stays the true sha256).
  void corrupt(const std::string& path);
  // `path` stays listed but its resolve URL answers 404 EntryNotFound.
  void hide(const std::string& path);

  // Binds 127.0.0.1 on a free port (or `port`) and serves on a background thread.
  void start(int port = 0);
  void stop();
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() const;
  void clear_requests();

  static std::string sha256_hex(const std::string& data);
  static std::string git_blob_sha1(const std::string& data);

 private:
  struct File {
    std::string content;
    std::string sha256, sha1;
    bool lfs = false;
  };
  struct Commit {
    std::map<std::string, std::shared_ptr<const File>> files;
  };
  struct Repo {
    std::map<std::string, std::string> refs;  // revision -> sha
    std::map<std::string, Commit> commits;    // sha -> files
    std::string token;                        // gated when non-empty
  };
  void routes();
  void record(const std::string& line);

  std::map<std::string, Repo> repos_;
  std::map<std::string, std::shared_ptr<const File>> blobs_;  // by sha256 (the CDN)
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::uint64_t, int>> cuts_;  // path -> (bytes, times left)
  std::set<std::string> corrupt_, hidden_;
  std::map<std::string, std::string> sha_to_path_;
  std::vector<std::string> requests_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace fathom::testing
