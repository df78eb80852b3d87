#include "hub/downloader.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "hub/model_ref.h"

namespace fathom::hub {
namespace fs = std::filesystem;
namespace {

std::string normalize_etag(std::string e) {
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

bool is_sha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string what(const RequestContext& c) {
  return c.file.empty() ? c.repo + "@" + c.revision : c.file + " of " + c.repo + "@" + c.revision;
}

std::uint64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

// Appends a 2xx body to the .incomplete file.
class BlobSink : public BodySink {
 public:
  BlobSink(std::FILE* file, std::uint64_t start, DownloadProgress& progress)
      : file_(file), start_(start), progress_(progress) {}
  bool begin(long status, const HttpResponse& response) override {
    if (status == 206) {
      const std::string range = response.header("content-range");  // "bytes START-END/TOTAL"
      if (range.rfind("bytes " + std::to_string(start_) + "-", 0) != 0) {
        error_ = "the server answered the range request from byte " + std::to_string(start_) + " with '" + range + "'";
        return false;
      }
      return true;
    }
    if (start_ > 0) {  // 200: the whole file again
      if (std::fflush(file_) != 0 || ftruncate(fileno(file_), 0) != 0) return false;
      std::rewind(file_);
      progress_.restart();
      start_ = 0;
    }
    return true;
  }
  bool write(const char* data, std::size_t size) override {
    if (std::fwrite(data, 1, size, file_) != size) {
      error_ = "cannot write to the cache (disk full?)";
      return false;
    }
    progress_.add(size);
    return true;
  }
  const std::string& error() const { return error_; }

 private:
  std::FILE* file_;
  std::uint64_t start_;
  DownloadProgress& progress_;
  std::string error_;
};

}  // namespace

Error hub_http_error(const HttpResponse& r, const RequestContext& c) {
  const std::string code = r.header("x-error-code");
  const std::string at = " at " + c.endpoint;
  std::string hub_message = r.header("x-error-message");
  if (hub_message.empty() && !r.body.empty() && r.body.size() < 500 && r.body.find('<') == std::string::npos) {
    try {
      auto j = nlohmann::json::parse(r.body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) hub_message = j["error"].get<std::string>();
    } catch (...) {
    }
  }
  const std::string detail = hub_message.empty() ? std::string() : " (the hub says: " + hub_message + ")";
  const std::string token_hint =
      c.has_token ? "the token given (HF_TOKEN or the token file) was refused or has no access to it"
                  : "set HF_TOKEN (or log in so that $HF_HOME/token exists) to a token with access";
  if (code == "RepoNotFound") {
    return make_error(ErrorCode::kNotFound, "no model repository " + c.repo + at + " (if it is private, " +
                                                token_hint + ")" + detail);
  }
  if (code == "RevisionNotFound") {
    return make_error(ErrorCode::kNotFound, "the repository " + c.repo + " has no revision '" + c.revision + "'" + at + detail);
  }
  if (code == "EntryNotFound") {
    return make_error(ErrorCode::kNotFound, "the repository " + c.repo + "@" + c.revision + " has no file " + c.file + at + detail);
  }
  if (r.status == 401 || r.status == 403) {
    const bool gated = code == "GatedRepo";
    return make_error(ErrorCode::kInvalidArgument,
                      "access to " + what(c) + at + " was denied (HTTP " + std::to_string(r.status) + "): the repository is " +
                          (gated ? "gated (accept its conditions on its hub page)" : "private or gated") + "; " + token_hint +
                          detail);
  }
  if (r.status == 404) {
    if (c.file.empty()) {
      return make_error(ErrorCode::kNotFound, "no model repository " + c.repo + " with revision '" + c.revision + "'" + at + detail);
    }
    return make_error(ErrorCode::kNotFound, "the repository " + c.repo + "@" + c.revision + " has no file " + c.file + at + detail);
  }
  std::string body = r.body.substr(0, 300);
  return make_error(r.status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kLoadFailed,
                    "the hub" + at + " answered HTTP " + std::to_string(r.status) + " for " + what(c) +
                        (body.empty() ? std::string() : ": " + body));
}

Result<FileMeta> fetch_file_meta(const HttpClient& http, const std::string& url, const RequestContext& context) {
  FATHOM_ASSIGN_OR_RETURN(HttpResponse r, http.head(url));
  if (r.status < 200 || r.status >= 400) return hub_http_error(r, context);
  FileMeta meta;
  meta.commit = r.header("x-repo-commit");
  std::string etag = r.header("x-linked-etag");
  if (etag.empty()) etag = r.header("etag");
  meta.etag = normalize_etag(etag);
  if (meta.etag.empty() || meta.etag.find('/') != std::string::npos || meta.etag.find("..") != std::string::npos) {
    return make_error(ErrorCode::kLoadFailed, "the hub at " + context.endpoint + " sent no usable ETag for " + what(context) +
                                                  " (HTTP " + std::to_string(r.status) + "); is HF_ENDPOINT a Hugging Face hub?");
  }
  meta.lfs = is_sha256(meta.etag);
  std::string size = r.header("x-linked-size");
  if (size.empty() && r.status < 300) size = r.header("content-length");
  try {
    if (!size.empty()) meta.size = std::stoull(size);
  } catch (...) {
  }
  return meta;
}

Result<std::string> sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kLoadFailed, "cannot read " + path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return make_error(ErrorCode::kInternal, "cannot initialise SHA-256");
  }
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

Status download_blob(const HttpClient& http, const RepoCache& cache, const std::string& url, const FileMeta& meta,
                     const RequestContext& context, const DownloadOptions& options) {
  std::error_code ec;
  const fs::path blob = cache.blob(meta.etag);
  if (fs::exists(blob, ec)) return Status::Ok();
  FATHOM_ASSIGN_OR_RETURN(BlobLock lock, BlobLock::acquire(cache.lock_file(meta.etag)));
  if (fs::exists(blob, ec)) return Status::Ok();  // another process finished it meanwhile
  fs::create_directories(blob.parent_path(), ec);
  const fs::path partial = cache.incomplete(meta.etag);
  const std::string label = context.repo + " " + context.file;

  std::string last_error;
  bool complete = false;
  for (int attempt = 0; attempt <= options.max_retries && !complete; ++attempt) {
    std::uint64_t have = file_size_or_zero(partial);
    if (meta.size && have > meta.size) {
      fs::remove(partial, ec);
      have = 0;
    }
    if (meta.size && have == meta.size) {
      complete = true;  // a previous run got every byte; verify below
      break;
    }
    std::unique_ptr<std::FILE, decltype(&std::fclose)> file(std::fopen(partial.c_str(), "ab"), std::fclose);
    if (!file) return make_error(ErrorCode::kLoadFailed, "cannot write " + partial.string());
    DownloadProgress progress(label, meta.size, have, options.progress);
    BlobSink sink(file.get(), have, progress);
    std::vector<std::string> headers;
    if (have > 0) headers.push_back("Range: bytes=" + std::to_string(have) + "-");
    auto r = http.stream(url, headers, sink);
    std::fflush(file.get());
    file.reset();
    const std::uint64_t now_have = file_size_or_zero(partial);
    if (!r.ok()) {
      progress.finish(false);
      if (!sink.error().empty()) return make_error(ErrorCode::kLoadFailed, "downloading " + what(context) + ": " + sink.error());
      last_error = r.error().message;
      if (r.error().code != ErrorCode::kUnavailable) return r.error();
      if (attempt < options.max_retries) {
        FATHOM_LOG(kWarn) << "download of " << what(context) << " interrupted after " << now_have << " bytes ("
                          << last_error << "); resuming";
      }
      continue;
    }
    if (r->status == 416) {  // the range does not fit the file: start over
      progress.finish(false);
      fs::remove(partial, ec);
      last_error = "the server refused to resume from byte " + std::to_string(have);
      continue;
    }
    if (r->status < 200 || r->status >= 300) {
      progress.finish(false);
      return hub_http_error(r.value(), context);
    }
    if (meta.size && now_have != meta.size) {
      progress.finish(false);
      last_error = "the transfer ended after " + std::to_string(now_have) + " of " + std::to_string(meta.size) + " bytes";
      continue;
    }
    progress.finish(true);
    complete = true;
  }
  if (!complete) {
    return make_error(ErrorCode::kUnavailable,
                      "the download of " + what(context) + " from " + context.endpoint + " was interrupted after " +
                          std::to_string(file_size_or_zero(partial)) +
                          (meta.size ? " of " + std::to_string(meta.size) : std::string()) + " bytes (" + last_error +
                          "); the partial file " + partial.string() + " is kept and the next run resumes it");
  }
  if (meta.lfs) {
    FATHOM_ASSIGN_OR_RETURN(std::string actual, sha256_file(partial));
    if (actual != meta.etag) {
      fs::remove(partial, ec);
      return make_error(ErrorCode::kLoadFailed, "checksum mismatch for " + what(context) + " downloaded from " +
                                                    context.endpoint + ": expected sha256 " + meta.etag + ", got " + actual +
                                                    "; the downloaded file was deleted (run again to retry)");
    }
  }
  fs::rename(partial, blob, ec);
  if (ec) return make_error(ErrorCode::kLoadFailed, "cannot move " + partial.string() + " to " + blob.string() + ": " + ec.message());
  return Status::Ok();
}

}  // namespace fathom::hub
