#include "models/plugin_loader.h"

#include <dlfcn.h>

#include <exception>
#include <set>

#include "base/log.h"
#include "models/plugin_api.h"

namespace fathom::models {
namespace {

// The loader's state during one fathom_register_plugin call (FathomPluginContext::host).
struct HostState {
  std::string path;
  std::vector<Architecture> pending;
  std::string error;  // first problem found
  bool rejected = false;  // add_architecture refused an architecture
};

HostState& state_of(const FathomPluginContext* ctx) { return *static_cast<HostState*>(ctx->host); }

int add_architecture(const FathomPluginContext* ctx, Architecture* architecture) {
  if (!ctx || !ctx->host) return 1;
  HostState& s = state_of(ctx);
  auto reject = [&](const std::string& why) {
    s.rejected = true;
    if (s.error.empty()) s.error = why;
    return 1;
  };
  if (!architecture) return reject("add_architecture was called with a null architecture");
  const ModelInfo& info = architecture->info;
  const std::string label = "architecture '" + info.name + "'";
  if (info.name.empty()) return reject("an architecture has an empty ModelInfo::name");
  if (info.hf_architectures.empty()) return reject(label + " lists no config.json architecture names");
  if (!architecture->load) return reject(label + " has no load function");
  if (info.tasks.empty()) return reject(label + " declares no task");
  if (info.devices.empty()) return reject(label + " declares no device");
  for (const auto& other : s.pending) {
    if (other.info.name == info.name) return reject("two architectures are named '" + info.name + "'");
    for (const auto& a : other.info.hf_architectures)
      for (const auto& b : info.hf_architectures)
        if (a == b) return reject("'" + a + "' is registered twice (by '" + other.info.name + "' and '" + info.name + "')");
  }
  s.pending.push_back(std::move(*architecture));
  s.pending.back().info.source = s.path;
  return 0;
}

void set_error(const FathomPluginContext* ctx, const char* message) {
  if (!ctx || !ctx->host) return;
  HostState& s = state_of(ctx);
  if (s.error.empty()) s.error = message ? message : "(no message)";
}

Error plugin_error(ErrorCode code, const std::string& path, const std::string& what) {
  return make_error(code, "plugin " + path + ": " + what);
}

std::string dl_error() {
  const char* e = dlerror();
  return e ? e : "unknown dynamic loader error";
}

}  // namespace

Result<LoadedPlugin> load_plugin(const std::filesystem::path& given, Registry& registry) {
  std::error_code ec;
  std::filesystem::path path = std::filesystem::absolute(given, ec).lexically_normal();
  if (ec) path = given;
  const std::string p = path.string();
  if (!std::filesystem::exists(path, ec))
    return plugin_error(ErrorCode::kNotFound, p, "file not found");
  if (std::filesystem::is_directory(path, ec))
    return plugin_error(ErrorCode::kLoadFailed, p, "is a directory, expected a shared library (.so)");

  dlerror();
  void* handle = dlopen(p.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle)
    return plugin_error(ErrorCode::kLoadFailed, p,
                        "cannot load the shared library: " + dl_error() +
                            " (a plugin must be built against this fathom's headers and loaded by a fathom "
                            "executable that exports its symbols)");
  auto fail = [&](ErrorCode code, const std::string& what) -> Error {
    dlclose(handle);
    return plugin_error(code, p, what);
  };

  dlerror();
  auto version_fn = reinterpret_cast<FathomPluginVersionFn>(dlsym(handle, "fathom_plugin_api_version"));
  if (!version_fn)
    return fail(ErrorCode::kLoadFailed,
                "not a fathom plugin: it does not export fathom_plugin_api_version (define it with "
                "FATHOM_PLUGIN_DEFINE_VERSION() from models/plugin_api.h)");
  const int version = version_fn();
  if (version != FATHOM_PLUGIN_API_VERSION)
    return fail(ErrorCode::kLoadFailed, "built for plugin API version " + std::to_string(version) +
                                            ", but this fathom provides version " +
                                            std::to_string(FATHOM_PLUGIN_API_VERSION) +
                                            "; rebuild the plugin against this fathom's headers");
  auto register_fn = reinterpret_cast<FathomRegisterPluginFn>(dlsym(handle, "fathom_register_plugin"));
  if (!register_fn)
    return fail(ErrorCode::kLoadFailed,
                "does not export the entry point fathom_register_plugin (extern \"C\" int "
                "fathom_register_plugin(const FathomPluginContext*))");

  HostState state;
  state.path = p;
  FathomPluginContext ctx{FATHOM_PLUGIN_API_VERSION, state.path.c_str(), &state, &add_architecture, &set_error};
  int rc = 0;
  try {
    rc = register_fn(&ctx);
  } catch (const std::exception& e) {
    return fail(ErrorCode::kLoadFailed, std::string("fathom_register_plugin threw: ") + e.what());
  } catch (...) {
    return fail(ErrorCode::kLoadFailed, "fathom_register_plugin threw a non-standard exception");
  }
  if (rc != 0)
    return fail(state.rejected ? ErrorCode::kInvalidArgument : ErrorCode::kLoadFailed,
                "fathom_register_plugin returned " + std::to_string(rc) +
                                            (state.error.empty() ? std::string() : ": " + state.error));
  if (!state.error.empty()) return fail(ErrorCode::kInvalidArgument, state.error);
  if (state.pending.empty()) return fail(ErrorCode::kLoadFailed, "fathom_register_plugin registered no architecture");

  // All or nothing: check every name against the registry before adding any.
  for (const auto& a : state.pending)
    for (const auto& name : a.info.hf_architectures)
      for (const auto& existing : registry.architectures())
        for (const auto& taken : existing->info.hf_architectures)
          if (name == taken)
            return fail(ErrorCode::kInvalidArgument, "architecture '" + name + "' of '" + a.info.name +
                                                         "' is already registered by '" + existing->info.name +
                                                         "' (" + existing->info.source + ")");
  LoadedPlugin loaded;
  loaded.path = path;
  loaded.handle = handle;
  for (auto& a : state.pending) {
    loaded.architectures.push_back(a.info.name);
    Status s = registry.add(std::move(a));
    if (!s.ok()) return plugin_error(ErrorCode::kInternal, p, s.error().message);  // checked above; kept loaded
  }
  std::string names;
  for (const auto& n : loaded.architectures) names += (names.empty() ? "" : ", ") + n;
  FATHOM_LOG(kInfo) << "plugin " << p << ": registered " << names;
  return loaded;
}

Result<std::vector<LoadedPlugin>> load_plugins(const std::vector<std::filesystem::path>& paths, Registry& registry) {
  std::vector<LoadedPlugin> out;
  for (const auto& path : paths) {
    FATHOM_ASSIGN_OR_RETURN(LoadedPlugin p, load_plugin(path, registry));
    out.push_back(std::move(p));
  }
  return out;
}

void* plugin_symbol(const LoadedPlugin& plugin, const char* name) {
  if (!plugin.handle || !name) return nullptr;
  return dlsym(plugin.handle, name);
}

}  // namespace fathom::models
