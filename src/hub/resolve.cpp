#include "hub/resolve.h"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "hub/cache_layout.h"
#include "hub/downloader.h"
#include "hub/file_selection.h"

namespace fathom::hub {
namespace fs = std::filesystem;
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

bool env_true(const char* name) {
  const char* v = env(name);
  if (!v) return false;
  std::string s(v);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s == "1" || s == "true" || s == "yes" || s == "on";
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<nlohmann::json> read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kLoadFailed, "cannot read " + path.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kLoadFailed, path.string() + ": invalid JSON: " + e.what());
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Checks the files a model directory must have (offline use of a snapshot).
Status check_snapshot(const fs::path& snap, const std::string& what) {
  std::error_code ec;
  auto missing = [&](const std::string& file, const std::string& why) {
    return make_error(ErrorCode::kNotFound, "the cached snapshot of " + what + " lacks " + (snap / file).string() + why);
  };
  if (!fs::exists(snap / "config.json", ec)) return missing("config.json", "");
  if (!fs::exists(snap / "model.safetensors", ec)) {
    if (!fs::exists(snap / "model.safetensors.index.json", ec)) return missing("model.safetensors", " (and model.safetensors.index.json)");
    FATHOM_ASSIGN_OR_RETURN(auto index, read_json(snap / "model.safetensors.index.json"));
    if (index.is_object() && index.contains("weight_map") && index["weight_map"].is_object()) {
      for (auto& [tensor, file] : index["weight_map"].items()) {
        if (file.is_string() && !fs::exists(snap / file.get<std::string>(), ec)) {
          return missing(file.get<std::string>(), " (a shard model.safetensors.index.json names)");
        }
      }
    }
  }
  if (fs::exists(snap / "modules.json", ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto modules, read_json(snap / "modules.json"));
    if (modules.is_array()) {
      for (const auto& m : modules) {
        if (!m.is_object() || !m.contains("path") || !m["path"].is_string() || !m.contains("type") || !m["type"].is_string()) continue;
        const std::string path = m["path"].get<std::string>(), type = m["type"].get<std::string>();
        if (path.empty() || ends_with(type, "Normalize") || ends_with(type, "Transformer")) continue;
        if (!fs::exists(snap / path / "config.json", ec)) return missing(path + "/config.json", " (a module modules.json names)");
      }
    }
  }
  return Status::Ok();
}

std::string offline_hint(const HubRef& ref) {
  return "; run `fathom download " + ref.to_string() + "` with network access (HF_HUB_OFFLINE unset) first";
}

}  // namespace

HubSettings HubSettings::from_environment() {
  HubSettings s;
  if (const char* e = env("HF_ENDPOINT")) s.endpoint = e;
  while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  s.cache_dir = default_cache_dir();
  if (const char* t = env("HF_TOKEN")) s.token = trim(t);
  else if (const char* t2 = env("HUGGING_FACE_HUB_TOKEN")) s.token = trim(t2);
  else {
    const fs::path file = env("HF_TOKEN_PATH") ? fs::path(env("HF_TOKEN_PATH")) : hf_home() / "token";
    s.token = trim(read_text(file));
  }
  s.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  if (env_true("HF_HUB_DISABLE_PROGRESS_BARS")) s.progress = ProgressMode::kLog;
  return s;
}

Result<fs::path> resolve_model_dir(const std::string& reference) {
  return resolve_model_dir(reference, HubSettings::from_environment());
}

Result<fs::path> resolve_model_dir(const std::string& reference, const HubSettings& settings) {
  std::error_code ec;
  auto ref = parse_hub_ref(reference);
  if (!ref || (!ref->explicit_hub && fs::exists(reference, ec))) return fs::path(reference);
  return fetch_snapshot(*ref, settings);
}

Result<fs::path> cached_snapshot(const HubRef& ref, const HubSettings& settings) {
  const RepoCache cache(settings.cache_dir, ref.repo);
  auto commit = cache.cached_commit(ref.revision);
  if (!commit) {
    return make_error(ErrorCode::kNotFound, ref.to_string() + " is not in the hub cache " + settings.cache_dir.string() +
                                                " (no " + cache.ref_file(ref.revision).string() + ")" + offline_hint(ref));
  }
  const fs::path snap = cache.snapshot(*commit);
  std::error_code ec;
  if (!fs::is_directory(snap, ec)) {
    return make_error(ErrorCode::kNotFound, ref.to_string() + " (commit " + *commit + ") has no snapshot in the hub cache: " +
                                                snap.string() + " is missing" + offline_hint(ref));
  }
  auto status = check_snapshot(snap, ref.to_string());
  if (!status.ok()) return make_error(status.error().code, status.error().message + offline_hint(ref));
  return snap;
}

Result<fs::path> fetch_snapshot(const HubRef& ref, const HubSettings& settings) {
  if (settings.offline) {
    auto snap = cached_snapshot(ref, settings);
    if (!snap.ok()) return make_error(snap.error().code, "HF_HUB_OFFLINE is set: " + snap.error().message);
    FATHOM_LOG(kInfo) << "hub: " << ref.to_string() << " from the cache (offline): " << snap->string();
    return snap;
  }
  HttpClient http(HttpOptions{settings.token, settings.connect_timeout_s, settings.stall_timeout_s});
  RequestContext ctx{settings.endpoint, ref.repo, ref.revision, "", !settings.token.empty()};
  const std::string api = settings.endpoint + "/api/models/" + ref.repo + "/revision/" + HttpClient::escape(ref.revision, false);
  FATHOM_LOG(kInfo) << "hub: resolving " << ref.to_string() << " at " << settings.endpoint;
  auto info = http.get(api);
  if (!info.ok()) {
    auto cached = cached_snapshot(ref, settings);
    if (cached.ok()) {
      FATHOM_LOG(kWarn) << "hub: " << info.error().message << "; using the cached snapshot " << cached->string();
      return cached;
    }
    return make_error(ErrorCode::kUnavailable, "cannot download " + ref.to_string() + ": " + info.error().message +
                                                   " (HF_ENDPOINT selects a mirror; HF_HUB_OFFLINE=1 uses the cache only)");
  }
  if (info->status != 200) return hub_http_error(info.value(), ctx);
  std::string commit;
  std::vector<std::string> siblings;
  try {
    auto j = nlohmann::json::parse(info->body);
    commit = j.at("sha").get<std::string>();
    for (const auto& s : j.at("siblings")) siblings.push_back(s.at("rfilename").get<std::string>());
  } catch (const std::exception& e) {
    return make_error(ErrorCode::kLoadFailed, "the hub at " + settings.endpoint + " answered " + api +
                                                  " with no usable sha/siblings (" + e.what() + ")");
  }
  if (!is_commit_hash(commit)) {
    return make_error(ErrorCode::kLoadFailed, "the hub at " + settings.endpoint + " gave '" + commit + "' as the commit of " + ref.to_string());
  }
  FATHOM_ASSIGN_OR_RETURN(std::vector<std::string> files, select_initial_files(ref.repo, siblings));

  const RepoCache cache(settings.cache_dir, ref.repo);
  const fs::path snap = cache.snapshot(commit);
  const DownloadOptions download{settings.max_retries, settings.progress};
  auto fetch = [&](const std::string& file) -> Status {
    std::error_code ec;
    if (fs::exists(snap / file, ec)) return Status::Ok();  // already in this snapshot (ours or transformers')
    RequestContext fctx = ctx;
    fctx.file = file;
    const std::string url = settings.endpoint + "/" + ref.repo + "/resolve/" + commit + "/" + HttpClient::escape(file, true);
    FATHOM_ASSIGN_OR_RETURN(FileMeta meta, fetch_file_meta(http, url, fctx));
    if (!fs::exists(cache.blob(meta.etag), ec)) FATHOM_TRY(download_blob(http, cache, url, meta, fctx, download));
    return cache.link(commit, file, meta.etag);
  };
  for (const auto& f : files) FATHOM_TRY(fetch(f));
  std::vector<std::string> more;
  std::error_code ec;
  if (fs::exists(snap / "modules.json", ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto modules, read_json(snap / "modules.json"));
    for (auto& f : module_files(modules, siblings)) more.push_back(f);
  }
  if (!fs::exists(snap / "model.safetensors", ec) && fs::exists(snap / "model.safetensors.index.json", ec)) {
    FATHOM_ASSIGN_OR_RETURN(auto index, read_json(snap / "model.safetensors.index.json"));
    FATHOM_ASSIGN_OR_RETURN(auto shards, shard_files(ref.repo, index, siblings));
    for (auto& f : shards) more.push_back(f);
  }
  for (const auto& f : more) FATHOM_TRY(fetch(f));
  FATHOM_TRY(cache.write_ref(ref.revision, commit));
  FATHOM_LOG(kInfo) << "hub: " << ref.to_string() << " is commit " << commit << ", snapshot " << snap.string();
  return snap;
}

}  // namespace fathom::hub
