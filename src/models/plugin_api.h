#pragma once
// fathom's model plugin interface.
//
// A plugin is a shared library (a CMake MODULE library) that adds architectures to fathom's Registry at
// start-up, e.g. `fathom serve --plugin ./libmy_model.so --model my-dir`. Once registered, a plugin
// architecture is matched, loaded, listed (`fathom models`, `fathom inspect`) and served exactly like a
// built-in one: its models implement the same capability interfaces (models/model.h), so the HTTP routes
// of their tasks appear for them. examples/funasr_ctc/ is a complete plugin.
//
// What a plugin exports (both extern "C", with default visibility: use FATHOM_PLUGIN_EXPORT):
//   int fathom_plugin_api_version(void);      return FATHOM_PLUGIN_API_VERSION as the plugin saw it
//                                             (FATHOM_PLUGIN_DEFINE_VERSION() defines it)
//   int fathom_register_plugin(const FathomPluginContext* ctx);
//                                             the ONE registration entry point: calls
//                                             ctx->add_architecture() once per architecture, returns 0;
//                                             on failure calls ctx->set_error() and returns non-zero.
// The loader (models/plugin_loader.h) checks the version before calling anything else, and adds the
// architectures to the registry only when registration succeeded and none of their config.json
// architecture names is already taken; otherwise nothing is added and the library is closed.
//
// ABI contract. This is a C++ interface: Architecture, ModelInfo, Model, Result and std:: types cross the
// boundary by value and through virtual calls. A plugin must therefore be
//   - built against the SAME fathom headers as the executable that loads it (FATHOM_PLUGIN_API_VERSION
//     catches deliberate interface changes, not arbitrary header edits),
//   - compiled with the same compiler family, C++ standard library (libstdc++) and C++20, with the same
//     FATHOM_WITH_* definitions,
//   - linked WITHOUT fathom's static libraries: fathom's functions (ops, formats, WeightStore, logging...)
//     are resolved at dlopen time from the executable, which exports them (ENABLE_EXPORTS plus whole
//     archives of base, runtime, backends, ops, layers, formats and models: see src/CMakeLists.txt,
//     fathom_export_for_plugins). Unresolved symbols fail the load with the dynamic linker's message.
// Build plugins with hidden visibility (CXX_VISIBILITY_PRESET hidden) so only the two entry points are
// exported and a plugin's internal names never clash with fathom's or another plugin's.
//
// Lifetime: a successfully loaded plugin is never unloaded (its code backs registry entries and models).
// Thread-safety: plugins are loaded at start-up, before models are loaded or requests served; loading
// mutates the registry and must not run concurrently with anything that reads it.
//
// Version history: 1 = first version (SpeechToText::start took a Whisper log-mel); 2 = SpeechToText::cancel;
//                  3 = SpeechToText::start takes 16 kHz samples, num_mel_bins() removed;
//                  4 = Architecture::inspect (component rows or the missing piece for `fathom inspect`);
//                  5 = SpeechOptions carries the temperature fallback schedule and its thresholds.
#include "models/registry.h"

// Bumped whenever this header, ModelInfo/Architecture/LoadFn (models/registry.h) or the capability
// interfaces (models/model.h) change incompatibly.
#define FATHOM_PLUGIN_API_VERSION 5

#define FATHOM_PLUGIN_EXPORT extern "C" __attribute__((visibility("default")))

// What the host hands to fathom_register_plugin. Valid only during that call.
struct FathomPluginContext {
  int api_version;          // the host's FATHOM_PLUGIN_API_VERSION
  const char* plugin_path;  // the plugin file as loaded (absolute); becomes ModelInfo::source
  void* host;               // the loader's state; opaque to plugins
  // Queues `architecture` (moved from) for registration. Returns 0, or non-zero when it is invalid (no
  // name, no config.json architecture names, no load function, no tasks, or a name another architecture
  // of this plugin already uses); the loader reports the reason with the plugin's path. ModelInfo::source
  // is set by the loader.
  int (*add_architecture)(const FathomPluginContext* ctx, fathom::models::Architecture* architecture);
  // Records why registration failed (copied); reported with the plugin's path when the entry point
  // returns non-zero.
  void (*set_error)(const FathomPluginContext* ctx, const char* message);
};

using FathomPluginVersionFn = int (*)();
using FathomRegisterPluginFn = int (*)(const FathomPluginContext*);

// Defines fathom_plugin_api_version() in a plugin (once, at namespace scope).
#define FATHOM_PLUGIN_DEFINE_VERSION() \
  FATHOM_PLUGIN_EXPORT int fathom_plugin_api_version() { return FATHOM_PLUGIN_API_VERSION; }
