#pragma once
// Loading model plugins (see models/plugin_api.h for the interface a plugin implements).
//
// load_plugin(PATH): dlopen (RTLD_NOW | RTLD_LOCAL), check fathom_plugin_api_version() against
// FATHOM_PLUGIN_API_VERSION, call fathom_register_plugin(), then add the architectures it registered to
// the registry with ModelInfo::source = the plugin's absolute path. Every failure names the path:
//   kNotFound    the file does not exist
//   kLoadFailed  dlopen failed (not a shared library, wrong machine, unresolved symbols: the dynamic
//                linker's message is included), a missing entry point, a version mismatch, registration
//                returned non-zero or threw, or registered nothing
//   kInvalidArgument  an architecture is invalid or one of its config.json names is already registered
// On failure the registry is unchanged and the library is closed again. A loaded plugin stays loaded
// for the life of the process.
//
// Thread-safety: call at start-up, before the registry is used by anything else.
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"
#include "models/registry.h"

namespace fathom::models {

struct LoadedPlugin {
  std::filesystem::path path;              // absolute path of the library
  void* handle = nullptr;                  // dlopen handle (never closed)
  std::vector<std::string> architectures;  // ModelInfo::name of each architecture it added
};

Result<LoadedPlugin> load_plugin(const std::filesystem::path& path, Registry& registry = Registry::global());

// Loads `paths` in order; stops at the first failure (plugins loaded before it stay registered).
Result<std::vector<LoadedPlugin>> load_plugins(const std::vector<std::filesystem::path>& paths,
                                               Registry& registry = Registry::global());

// A symbol of a loaded plugin (dlsym), or nullptr. For plugin-specific diagnostics in tests and tools.
void* plugin_symbol(const LoadedPlugin& plugin, const char* name);

}  // namespace fathom::models
