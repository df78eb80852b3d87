#pragma once
// `fathom serve` configuration: one ServerConfig built from a TOML file (--config) and command-line flags.
//
// The file (documented in docs/configuration.md, example in examples/fathom.toml) has the tables [server],
// [limits], [defaults] and an array [[models]]. Unknown tables or keys, wrong types and bad values are errors
// naming the file, the line and the key. merge_config() combines the file with the flags: a setting given in
// both places with different values is an error naming both (no silent precedence).
//
// Byte sizes are integers (bytes) or strings with a unit: "2GiB", "512MiB", "64KiB", "1.5GB", "100B".
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/dtype.h"
#include "base/error.h"
#include "engine/model_manager.h"
#include "models/registry.h"
#include "runtime/device.h"
#include "server/router.h"

namespace fathom::server {

// "2GiB" -> 2147483648; binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) units, "B" or none = bytes.
Result<std::size_t> parse_byte_size(std::string_view text);

// One served model. Unset optionals take ServerConfig's defaults.
struct ModelConfig {
  std::string name;                          // served name (the `model` field of requests)
  std::filesystem::path path;                // Hugging Face model directory
  std::optional<Device> device;              // where it runs
  std::optional<DType> dtype;                // compute dtype; nullopt = auto (or the default)
  std::optional<std::size_t> memory_budget;  // bytes it may use on its device; 0 = none
  std::optional<int> max_batch_tokens;       // token budget of one batch (its inputs' tokens summed)
  std::optional<double> priority;            // share of its device when several models are busy (> 0)
  std::optional<std::size_t> max_queued;     // inputs waiting in its queue before 429
  std::optional<bool> cuda_graphs;           // capture its forward passes in CUDA graphs (CUDA devices)
  std::optional<bool> concurrent;            // its own device worker: steps overlap other models' (engine::ServeOptions)
  std::optional<int> max_sms;                // CUDA: run on an SM partition of this many SMs (LoadOptions::max_sms)
};

struct ServerConfig {
  ServerOptions server;                 // host, port, limits, admin token, access log
  std::vector<ModelConfig> models;      // in the order given
  // Defaults for every model:
  Device device;                        // cpu
  std::optional<DType> dtype;           // nullopt = auto: float32 on CPU, the checkpoint's 16-bit type on CUDA
  int max_batch_tokens = 16384;
  int max_batch_size = 256;             // sequences per batch
  bool cuda_graphs = true;              // capture forward passes in CUDA graphs where the model allows it
                                        // (defaults.cuda_graphs / --cuda-graphs; a model's own key wins)
  bool concurrent = false;              // models run on device workers of their own (defaults.concurrent /
                                        // --concurrent-models; a model's own key wins)
  std::size_t max_queued = 1024;        // inputs waiting per model (--max-queued-requests)
  std::string log_level = "info";       // debug, info, warn, error, off
  std::set<std::string> set_in_file;    // dotted keys the config file set ("server.port"), for conflict checks
};

// The resolved options for one model of `config`.
models::LoadOptions model_load_options(const ServerConfig& config, const ModelConfig& model);
engine::ServeOptions model_serve_options(const ServerConfig& config, const ModelConfig& model);

// Parses TOML text; `source` names it in errors (the file path).
Result<ServerConfig> parse_config(std::string_view toml, const std::string& source);
Result<ServerConfig> load_config_file(const std::filesystem::path& file);

// What the command line said; a field is set only when its flag was given.
struct CommandLineSettings {
  std::optional<std::string> host;
  std::optional<int> port;
  std::optional<std::size_t> max_body_bytes;
  std::optional<std::size_t> max_json_body_bytes;
  std::optional<std::size_t> max_inputs;
  std::optional<std::size_t> max_input_tokens;
  std::optional<std::size_t> max_request_tokens;
  std::optional<std::size_t> max_connections;
  std::optional<double> request_timeout_s;
  std::optional<std::string> admin_token;
  std::optional<bool> access_log;
  std::optional<std::string> log_level;
  std::optional<Device> device;
  std::optional<std::optional<DType>> dtype;  // set: given (inner nullopt = "auto")
  std::optional<int> max_batch_tokens;
  std::optional<int> max_batch_size;
  std::optional<bool> cuda_graphs;                // --cuda-graphs on|off
  std::optional<bool> concurrent;                 // --concurrent-models
  std::optional<std::size_t> max_queued;
  std::vector<ModelConfig> models;               // --model [NAME=]DIR (name and path only)
  std::map<std::string, std::size_t> budgets;    // --budget NAME=SIZE
  std::map<std::string, double> priorities;      // --priority NAME=WEIGHT
};

// Combines the file (when given; `file_name` names it in errors) with the command line. Errors: a setting
// given in both with different values; a model defined twice with different paths; --budget/--priority
// naming no model; duplicate model names.
Result<ServerConfig> merge_config(const std::optional<ServerConfig>& file, const std::string& file_name,
                                  const CommandLineSettings& cli);

}  // namespace fathom::server
