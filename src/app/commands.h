#pragma once
// The `fathom` subcommands. Each returns the process exit code: 0 ok, 1 failure (2, usage errors, is
// decided by the command-line parser in main.cpp).
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/dtype.h"
#include "models/model.h"
#include "server/router.h"
#include "server/server_config.h"

namespace fathom::app {

// One --model argument.
struct ModelSpec {
  std::string name;             // served name (defaults to the directory's base name)
  std::filesystem::path dir;    // a model directory or a hub reference ORG/NAME[@REVISION] (hub/resolve.h)
};

// Everything `fathom serve` needs: the command line and --config merged into one ServerConfig.
struct ServeConfig {
  server::ServerConfig config;        // no models: serve the bundled demo models
  std::string argv0;                  // to find the demo models beside the executable
};

// "[NAME=]DIR" -> spec. NAME may not contain '/'; without it the name is DIR's base name (NAME of a hub
// reference ORG/NAME[@REVISION]).
ModelSpec parse_model_spec(const std::string& text);
// Where the bundled random-weight demo checkpoints live (next to the executable's ../tests/fixtures, else the
// source tree the binary was built from); empty when not found.
std::vector<ModelSpec> find_demo_models(const std::string& argv0);

// Everything `fathom transcribe` needs.
struct TranscribeConfig {
  std::vector<std::filesystem::path> files;  // audio files (any format decode_audio accepts)
  std::filesystem::path model_dir;           // a speech-to-text model directory or hub reference
  std::string format = "text";               // text, json, verbose_json, srt or vtt
  std::string language;                      // source language; empty: detect
  bool translate = false;                    // translate into English
  std::string prompt;                        // decoder prompt
  int max_tokens = 0;                        // per 30 s window; 0: the model's default
  std::string progress = "auto";             // auto (stderr a terminal, > 30 s of audio), always, never
  Device device;
  std::optional<DType> dtype;  // nullopt = auto (f32 on CPU, the checkpoint's 16-bit type on CUDA)
};

int run_serve(ServeConfig config);
int run_transcribe(const TranscribeConfig& config);
int run_models();
// `reference`: a model directory or a hub reference (downloaded first, see hub/resolve.h).
int run_inspect(const std::string& reference);
// Downloads the hub reference ORG/NAME[@REVISION] into the hub cache and prints the snapshot directory.
int run_download(const std::string& reference);
int run_version();

// "12.3 MiB"
std::string format_bytes(std::size_t bytes);

}  // namespace fathom::app
