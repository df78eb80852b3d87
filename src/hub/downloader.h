#pragma once
// Downloading one file of a hub repository into the cache (cache_layout.h).
//
// fetch_file_meta() asks the hub with HEAD {endpoint}/{repo}/resolve/{commit}/{path} for the file's ETag
// (X-Linked-Etag for LFS files: their sha256; else ETag, the git blob hash), size (X-Linked-Size, else
// Content-Length) and commit (X-Repo-Commit), without following the redirect to a CDN.
// download_blob() then stores the content as blobs/<etag>:
//   - under the blob's lock (.locks/.../<etag>.lock), re-checking whether another process finished it;
//   - into blobs/<etag>.incomplete, resuming a previous partial with `Range: bytes=N-` (a server answering
//     200 instead of 206 restarts from 0), retrying interrupted transfers `max_retries` times;
//   - an LFS file's sha256 must equal its ETag: on a mismatch the partial is deleted and it is an error;
//   - only a complete, verified file is renamed to blobs/<etag> (atomic), so an interrupted download never
//     leaves a file that looks complete; an interrupted one keeps its .incomplete for the next run.
// Thread-safety: any thread, with its own HttpClient.
#include <cstdint>
#include <string>

#include "base/error.h"
#include "hub/cache_layout.h"
#include "hub/http_client.h"
#include "hub/progress.h"

namespace fathom::hub {

// What the hub says about one file.
struct FileMeta {
  std::string commit;      // X-Repo-Commit (may be empty)
  std::string etag;        // quotes and W/ removed
  bool lfs = false;        // the ETag is a sha256 (64 hex): verified after download
  std::uint64_t size = 0;  // bytes; 0 when the hub did not say
};

// Where a request happened, for error messages.
struct RequestContext {
  std::string endpoint;  // e.g. https://huggingface.co
  std::string repo;      // ORG/NAME
  std::string revision;  // as asked
  std::string file;      // empty for the repository / revision API call
  bool has_token = false;
};

// An Error for a non-2xx hub answer: 401/403 (private or gated: mentions HF_TOKEN), 404 (no such repository,
// revision or file: says which, from the hub's X-Error-Code when present), others with the status and body.
Error hub_http_error(const HttpResponse& response, const RequestContext& context);

Result<FileMeta> fetch_file_meta(const HttpClient& http, const std::string& url, const RequestContext& context);

struct DownloadOptions {
  int max_retries = 3;                        // extra attempts after an interrupted transfer (each resumes)
  ProgressMode progress = ProgressMode::kAuto;
};

// Stores `url`'s content as cache.blob(meta.etag) (see above). A no-op when that blob exists.
Status download_blob(const HttpClient& http, const RepoCache& cache, const std::string& url, const FileMeta& meta,
                     const RequestContext& context, const DownloadOptions& options);

// Lower-case hex sha256 of a file's content.
Result<std::string> sha256_file(const std::filesystem::path& path);

}  // namespace fathom::hub
