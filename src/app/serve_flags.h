#pragma once
// The `fathom serve` command line: declares the flags on a CLI11 subcommand and turns what was given (plus
// --config FILE) into one server::ServerConfig through server::merge_config (conflicts are errors).
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "server/server_config.h"

namespace fathom::app {

// Raw flag values; CLI11 writes into these.
struct ServeFlags {
  std::string config_file;
  std::string host, admin_token, device = "cpu", dtype = "auto", log_level = "info";
  std::string max_body_bytes, max_json_body_bytes;  // byte sizes ("32MiB" or bytes)
  int port = 8000;
  int max_batch_tokens = 16384, max_batch_size = 256;
  std::size_t max_inputs = 2048, max_input_tokens = 0, max_request_tokens = 0, max_connections = 1024,
              max_queued = 1024;
  double request_timeout_s = 600;
  bool no_access_log = false;
  bool concurrent_models = false;
  std::string cuda_graphs = "on";
  std::vector<std::string> models, budgets, priorities;
};

void add_serve_flags(CLI::App& serve, ServeFlags& flags);

// The merged configuration; on a usage error (bad value, conflict with the file, unreadable file) returns
// nullopt with `error` set.
std::optional<server::ServerConfig> resolve_serve_flags(const CLI::App& serve, const ServeFlags& flags,
                                                        std::string* error);

}  // namespace fathom::app
