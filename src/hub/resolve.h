#pragma once
// Model reference -> local model directory: the one entry point the rest of fathom calls (the model
// manager for --model, config files and the admin API; `fathom inspect`, `transcribe` and `download`).
//
// resolve_model_dir(reference):
//   1. a path that exists (file or directory) is returned as given: a local path always wins (except over
//      the explicit form hf://ORG/NAME[@REVISION]);
//   2. text of the form ORG/NAME[@REVISION] (hub/model_ref.h) is a Hugging Face Hub repository: its
//      snapshot directory in the hub cache (hub/cache_layout.h) is returned, downloading what fathom needs
//      (hub/file_selection.h) first unless offline;
//   3. anything else is returned unchanged (loading it then fails naming the missing directory).
//
// Online (the default): GET {endpoint}/api/models/{repo}/revision/{rev} gives the commit and the file list;
// each selected file whose snapshot link exists is kept without a request, otherwise HEAD gives its ETag, and
// a blob already in the cache is linked without downloading it (hub/downloader.h); refs/<rev> is written
// last. If the hub cannot be reached at all and the cache holds a complete snapshot of the revision, that
// snapshot is used with a warning.
// Offline (HF_HUB_OFFLINE=1): no network; refs/<rev> (or the commit given) must name a snapshot with
// config.json, the weights (every shard of an index) and the sentence-transformers module configs, else an
// error names the missing file.
// Thread-safety: any thread; concurrent downloads of one blob are serialised by its lock file.
#include <filesystem>
#include <string>

#include "base/error.h"
#include "hub/http_client.h"
#include "hub/model_ref.h"
#include "hub/progress.h"

namespace fathom::hub {

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT (a mirror); no trailing '/'
  std::filesystem::path cache_dir;                  // default_cache_dir()
  std::string token;         // HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the file $HF_TOKEN_PATH / $HF_HOME/token
  bool offline = false;      // HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) = 1 / true / yes / on
  int max_retries = 3;       // extra attempts per interrupted file download, each resuming
  long connect_timeout_s = 10;
  long stall_timeout_s = 60;  // abort a transfer that stalls this long
  ProgressMode progress = ProgressMode::kAuto;  // kLog when HF_HUB_DISABLE_PROGRESS_BARS=1

  // The settings the environment gives (the defaults above otherwise).
  static HubSettings from_environment();
};

// See the file comment. `settings` defaults to HubSettings::from_environment().
Result<std::filesystem::path> resolve_model_dir(const std::string& reference);
Result<std::filesystem::path> resolve_model_dir(const std::string& reference, const HubSettings& settings);

// The snapshot directory of `ref`, downloaded as needed (online) or from the cache only (offline).
Result<std::filesystem::path> fetch_snapshot(const HubRef& ref, const HubSettings& settings);
// The cached snapshot of `ref` without any network access; an error names what is missing.
Result<std::filesystem::path> cached_snapshot(const HubRef& ref, const HubSettings& settings);

}  // namespace fathom::hub
