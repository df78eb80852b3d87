#include "support/fake_hub.h"

#include <httplib.h>
#include <openssl/evp.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace fathom::testing {
namespace fs = std::filesystem;
namespace {

std::string digest_hex(const EVP_MD* md, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned int i = 0; i < len; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_header("X-Error-Code", code);
  res.set_header("X-Error-Message", message);
  res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

}  // namespace

std::string FakeHub::sha256_hex(const std::string& data) { return digest_hex(EVP_sha256(), data); }
std::string FakeHub::git_blob_sha1(const std::string& data) {
  return digest_hex(EVP_sha1(), "blob " + std::to_string(data.size()) + std::string(1, '\0') + data);
}

FakeHub::FakeHub() = default;
FakeHub::~FakeHub() { stop(); }

void FakeHub::add_commit(const std::string& repo, const fs::path& dir, const std::string& sha,
                         const std::vector<std::string>& branches, const std::map<std::string, std::string>& extra) {
  Repo& r = repos_[repo];
  Commit& c = r.commits[sha];
  auto add = [&](const std::string& path, std::string content) {
    auto f = std::make_shared<File>();
    f->lfs = path.size() > 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
    f->sha256 = sha256_hex(content);
    f->sha1 = git_blob_sha1(content);
    f->content = std::move(content);
    if (f->lfs) {
      blobs_[f->sha256] = f;
      sha_to_path_[f->sha256] = path;
    }
    c.files[path] = f;
  };
  if (!dir.empty()) {
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file()) add(e.path().lexically_relative(dir).generic_string(), read_file(e.path()));
    }
  }
  for (const auto& [p, content] : extra) add(p, content);
  for (const auto& b : branches) r.refs[b] = sha;
}

void FakeHub::set_gated(const std::string& repo, const std::string& token) { repos_[repo].token = token; }

void FakeHub::cut_transfer(const std::string& path, std::uint64_t bytes, int times) {
  std::lock_guard lock(mu_);
  cuts_[path] = {bytes, times};
}
void FakeHub::corrupt(const std::string& path) {
  std::lock_guard lock(mu_);
  corrupt_.insert(path);
}
void FakeHub::hide(const std::string& path) {
  std::lock_guard lock(mu_);
  hidden_.insert(path);
}

std::vector<std::string> FakeHub::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}
void FakeHub::clear_requests() {
  std::lock_guard lock(mu_);
  requests_.clear();
}
void FakeHub::record(const std::string& line) {
  std::lock_guard lock(mu_);
  requests_.push_back(line);
}

void FakeHub::routes() {
  auto& svr = *server_;
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
    std::string line = req.method + " " + req.path;
    if (req.has_header("Range")) line += " range=" + req.get_header_value("Range");
    record(line);
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Resolves repo + revision; answers the error itself and returns nullptr when there is none.
  auto find_commit = [this](const std::string& repo, const std::string& rev, httplib::Response& res) -> const Commit* {
    auto r = repos_.find(repo);
    if (r == repos_.end()) {
      error(res, 404, "RepoNotFound", "Repository not found");
      return nullptr;
    }
    std::string sha = rev;
    if (auto ref = r->second.refs.find(rev); ref != r->second.refs.end()) sha = ref->second;
    auto c = r->second.commits.find(sha);
    if (c == r->second.commits.end()) {
      error(res, 404, "RevisionNotFound", "Invalid rev id: " + rev);
      return nullptr;
    }
    return &c->second;
  };
  svr.Get(R"(/api/models/([^/]+)/([^/]+)/revision/(.+))", [this, find_commit](const httplib::Request& req, httplib::Response& res) {
    const std::string repo = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    const Commit* c = find_commit(repo, req.matches[3], res);
    if (!c) return;
    std::string sha;
    for (const auto& [s, commit] : repos_[repo].commits) {
      if (&commit == c) sha = s;
    }
    nlohmann::json siblings = nlohmann::json::array();
    for (const auto& [p, f] : c->files) siblings.push_back({{"rfilename", p}});
    res.set_content(nlohmann::json{{"id", repo}, {"modelId", repo}, {"sha", sha}, {"siblings", siblings}}.dump(),
                    "application/json");
  });
  svr.Get(R"(/([^/]+)/([^/]+)/resolve/([^/]+)/(.+))", [this, find_commit](const httplib::Request& req, httplib::Response& res) {
    const std::string repo = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    const std::string path = req.matches[4];
    const Commit* c = find_commit(repo, req.matches[3], res);
    if (!c) return;
    const Repo& r = repos_[repo];
    if (!r.token.empty() && req.get_header_value("Authorization") != "Bearer " + r.token) {
      error(res, 401, "GatedRepo", "Access to model " + repo + " is restricted. You must have access to it and be authenticated to access it.");
      return;
    }
    auto f = c->files.find(path);
    bool hidden;
    {
      std::lock_guard lock(mu_);
      hidden = hidden_.count(path) > 0;
    }
    if (f == c->files.end() || hidden) {
      error(res, 404, "EntryNotFound", path + " does not exist on this revision");
      return;
    }
    std::string sha;
    for (const auto& [s, commit] : r.commits) {
      if (&commit == c) sha = s;
    }
    res.set_header("X-Repo-Commit", sha);
    if (f->second->lfs) {
      res.status = 302;
      res.set_header("X-Linked-Etag", "\"" + f->second->sha256 + "\"");
      res.set_header("X-Linked-Size", std::to_string(f->second->content.size()));
      res.set_header("ETag", "\"" + f->second->sha256 + "\"");
      res.set_header("Location", "http://127.0.0.1:" + std::to_string(port_) + "/cdn/" + f->second->sha256);
      return;
    }
    res.set_header("ETag", "\"" + f->second->sha1 + "\"");
    res.set_content(f->second->content, "application/octet-stream");
  });
  svr.Get(R"(/cdn/([0-9a-f]{64}))", [this](const httplib::Request& req, httplib::Response& res) {
    auto it = blobs_.find(req.matches[1]);
    if (it == blobs_.end()) {
      res.status = 404;
      return;
    }
    auto file = it->second;
    const std::string path = sha_to_path_[it->first];
    std::uint64_t cut = UINT64_MAX;
    bool bad = false;
    {
      std::lock_guard lock(mu_);
      if (auto c = cuts_.find(path); c != cuts_.end() && c->second.second > 0 && req.method == "GET") {
        cut = c->second.first;
        --c->second.second;
      }
      bad = corrupt_.count(path) > 0;
    }
    std::string content = file->content;
    if (bad && !content.empty()) content[content.size() / 2] ^= 0x5a;
    auto data = std::make_shared<std::string>(std::move(content));
    res.set_content_provider(data->size(), "application/octet-stream",
                             [data, cut](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               // `offset` counts from the start of the file (a Range request starts later).
                               std::size_t n = std::min<std::size_t>(length, 64 * 1024);
                               if (offset >= cut) return false;  // close the connection mid-file
                               if (offset + n > cut) n = static_cast<std::size_t>(cut - offset);
                               return sink.write(data->data() + offset, n);
                             });
  });
}

void FakeHub::start(int port) {
  server_ = std::make_unique<httplib::Server>();
  routes();
  if (port == 0) {
    port_ = server_->bind_to_any_port("127.0.0.1");
  } else {
    port_ = server_->bind_to_port("127.0.0.1", port) ? port : -1;
  }
  if (port_ <= 0) throw std::runtime_error("fake hub: cannot bind");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void FakeHub::stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace fathom::testing
