#include "app/serve_flags.h"

#include "app/commands.h"
#include "base/log.h"

namespace fathom::app {

void add_serve_flags(CLI::App& serve, ServeFlags& f) {
  serve.add_option("--config", f.config_file,
                   "A TOML configuration file (see docs/configuration.md); flags given as well must agree with it");
  serve.add_option("--host", f.host, "Address to listen on (default 127.0.0.1)");
  serve.add_option("--port", f.port, "Port to listen on (0: any free port; default 8000)")->check(CLI::Range(0, 65535));
  serve.add_option("--model", f.models,
                   "[NAME=]DIR or [NAME=]ORG/NAME[@REVISION]: a Hugging Face model directory, or a hub repository "
                   "downloaded into the hub cache (an existing path always wins), to serve (repeatable); NAME defaults "
                   "to the directory's base name (the repository's NAME). Without --model (and no models in --config), "
                   "the bundled random-weight demo models are served");
  serve.add_option("--budget", f.budgets,
                   "NAME=SIZE: the most device memory model NAME may use, e.g. 2GiB or 512MiB (repeatable); "
                   "loading fails with an error naming the budget when it needs more");
  serve.add_option("--device", f.device, "cpu, cuda or cuda:N (default cpu)");
  serve.add_option("--dtype", f.dtype, "auto, float32, float16 or bfloat16 (auto: float32 on CPU, the "
                                       "checkpoint's 16-bit type on CUDA)");
  serve.add_option("--max-batch-tokens", f.max_batch_tokens, "Token budget of one batch, its inputs' tokens summed (default 16384)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--cuda-graphs", f.cuda_graphs,
                   "on or off: capture each model's forward pass in CUDA graphs per token-count bucket "
                   "(CUDA devices, models that support it; default on)")
      ->check(CLI::IsMember({"on", "off"}));
  serve.add_option("--max-batch-size", f.max_batch_size, "Most sequences in one batch (default 256)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--max-body-bytes", f.max_body_bytes,
                   "Largest request body of any kind (audio uploads included): bytes or a size like 32MiB (default 32MiB)");
  serve.add_option("--max-json-body-bytes", f.max_json_body_bytes,
                   "Largest JSON request body (embeddings, admin): bytes or a size like 2MiB (default 2MiB)");
  serve.add_option("--max-inputs", f.max_inputs, "Most inputs in one embeddings request (default 2048)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--max-input-tokens", f.max_input_tokens,
                   "Most tokens per input, below each model's own maximum (default 0: the model's maximum)");
  serve.add_option("--max-request-tokens", f.max_request_tokens,
                   "Most tokens of all inputs of one request together (default 0: no limit)");
  serve.add_option("--max-connections", f.max_connections,
                   "Most connections served at once, one thread each; more wait for a free thread (default 1024)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--max-queued-requests", f.max_queued,
                   "Inputs waiting per model before requests get 429 with Retry-After (default 1024)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--request-timeout-seconds", f.request_timeout_s,
                   "A request still unanswered after this gets 504 and its queued work is dropped (default 600)")
      ->check(CLI::PositiveNumber);
  serve.add_option("--admin-token", f.admin_token,
                   "Enables the admin API (/v1/admin/models) for requests with 'Authorization: Bearer TOKEN'")
      ->envname("FATHOM_ADMIN_TOKEN");
  serve.add_option("--priority", f.priorities,
                   "NAME=WEIGHT: the model's share of its device when several models are busy (default 1; repeatable)");
  serve.add_option("--log-level", f.log_level, "debug, info, warn, error or off (default info)");
  serve.add_flag("--concurrent-models", f.concurrent_models,
                 "Run each model on a device worker of its own so that models' steps overlap on a GPU (CUDA stream "
                 "priority from each model's priority); default: models of a device take turns on one worker");
  serve.add_flag("--no-access-log", f.no_access_log, "Do not log one line per request");
}

std::optional<server::ServerConfig> resolve_serve_flags(const CLI::App& serve, const ServeFlags& f, std::string* error) {
  auto given = [&](const char* flag) { return serve.count(flag) > 0; };
  auto usage = [&](std::string message) -> std::optional<server::ServerConfig> {
    *error = std::move(message);
    return std::nullopt;
  };
  server::CommandLineSettings cli;
  if (given("--host")) cli.host = f.host;
  if (given("--port")) cli.port = f.port;
  if (given("--admin-token")) {
    if (f.admin_token.empty()) return usage("--admin-token must not be empty");
    cli.admin_token = f.admin_token;
  }
  if (given("--log-level")) {
    if (!parse_log_level(f.log_level)) {
      return usage("--log-level must be debug, info, warn, error or off, got '" + f.log_level + "'");
    }
    cli.log_level = f.log_level;
  }
  if (given("--no-access-log")) cli.access_log = !f.no_access_log;
  if (given("--max-body-bytes")) {
    auto size = server::parse_byte_size(f.max_body_bytes);
    if (!size.ok() || size.value() == 0) {
      return usage("--max-body-bytes: " + (size.ok() ? std::string("must be positive") : size.error().message));
    }
    cli.max_body_bytes = size.value();
  }
  if (given("--max-json-body-bytes")) {
    auto size = server::parse_byte_size(f.max_json_body_bytes);
    if (!size.ok() || size.value() == 0) {
      return usage("--max-json-body-bytes: " + (size.ok() ? std::string("must be positive") : size.error().message));
    }
    cli.max_json_body_bytes = size.value();
  }
  if (given("--max-inputs")) cli.max_inputs = f.max_inputs;
  if (given("--max-input-tokens")) cli.max_input_tokens = f.max_input_tokens;
  if (given("--max-request-tokens")) cli.max_request_tokens = f.max_request_tokens;
  if (given("--max-connections")) cli.max_connections = f.max_connections;
  if (given("--max-queued-requests")) cli.max_queued = f.max_queued;
  if (given("--request-timeout-seconds")) cli.request_timeout_s = f.request_timeout_s;
  if (given("--max-batch-tokens")) cli.max_batch_tokens = f.max_batch_tokens;
  if (given("--max-batch-size")) cli.max_batch_size = f.max_batch_size;
  if (given("--cuda-graphs")) cli.cuda_graphs = f.cuda_graphs == "on";
  if (given("--concurrent-models")) cli.concurrent = f.concurrent_models;
  if (given("--device")) {
    auto device = parse_device(f.device);
    if (!device) return usage("--device must be cpu, cuda or cuda:N, got '" + f.device + "'");
    cli.device = *device;
  }
  if (given("--dtype")) {
    std::optional<DType> dtype;
    if (f.dtype != "auto") {
      dtype = parse_dtype(f.dtype);
      if (!dtype || !is_float(*dtype)) {
        return usage("--dtype must be auto, float32, float16 or bfloat16, got '" + f.dtype + "'");
      }
    }
    cli.dtype = dtype;
  }
  for (const auto& m : f.models) {
    auto spec = parse_model_spec(m);
    if (spec.name.empty() || spec.dir.empty()) return usage("--model must be [NAME=]DIR, got '" + m + "'");
    for (const auto& other : cli.models) {
      if (other.name == spec.name) return usage("--model names '" + spec.name + "' twice");
    }
    server::ModelConfig mc;
    mc.name = spec.name;
    mc.path = spec.dir;
    cli.models.push_back(std::move(mc));
  }
  for (const auto& b : f.budgets) {
    auto eq = b.find('=');
    if (eq == std::string::npos || eq == 0) return usage("--budget must be NAME=SIZE (e.g. bge=2GiB), got '" + b + "'");
    auto size = server::parse_byte_size(b.substr(eq + 1));
    if (!size.ok()) return usage("--budget " + b + ": " + size.error().message);
    cli.budgets[b.substr(0, eq)] = size.value();
  }
  for (const auto& p : f.priorities) {
    auto eq = p.find('=');
    double weight = 0;
    try {
      if (eq != std::string::npos) weight = std::stod(p.substr(eq + 1));
    } catch (...) {
    }
    if (eq == std::string::npos || eq == 0 || !(weight > 0)) {
      return usage("--priority must be NAME=WEIGHT with a positive weight, got '" + p + "'");
    }
    cli.priorities[p.substr(0, eq)] = weight;
  }

  std::optional<server::ServerConfig> file;
  if (given("--config")) {
    auto loaded = server::load_config_file(f.config_file);
    if (!loaded.ok()) return usage(loaded.error().message);
    file = std::move(loaded).value();
  }
  auto merged = server::merge_config(file, f.config_file, cli);
  if (!merged.ok()) return usage(merged.error().message);
  return std::move(merged).value();
}

}  // namespace fathom::app
