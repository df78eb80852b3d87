// fathom: an OpenAI-compatible inference server for embedding and speech-to-text models.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "base/log.h"
#include "models/plugin_loader.h"
#include "runtime/device.h"

namespace {

int usage_error(const std::string& message) {
  std::cerr << "fathom: " << message << "\nRun 'fathom --help' for usage.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fathom;
  CLI::App cli{"fathom: an OpenAI-compatible inference server for embedding and speech-to-text models", "fathom"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", std::string(FATHOM_VERSION));

  app::ServeConfig config;
  config.argv0 = argc > 0 ? argv[0] : "fathom";
  std::vector<std::string> model_args;
  std::string device_text = "cpu";
  std::string dtype_text = "auto";
  std::string log_level = "info";
  bool no_access_log = false;
  std::vector<std::string> plugin_args;
  const char* plugin_help =
      "PATH: a model plugin (shared library, see docs/adding-a-model.md) whose architectures are registered "
      "before anything else (repeatable)";

  auto* serve = cli.add_subcommand("serve", "Serve models over an OpenAI-compatible HTTP API");
  serve->add_option("--host", config.server.host, "Address to listen on")->capture_default_str();
  serve->add_option("--port", config.server.port, "Port to listen on (0: any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  serve->add_option("--model", model_args,
                    "[NAME=]DIR: a Hugging Face model directory to serve (repeatable); NAME defaults to the "
                    "directory's base name. Without --model, the bundled random-weight demo models are served");
  serve->add_option("--device", device_text, "cpu, cuda or cuda:N")->capture_default_str();
  serve->add_option("--dtype", dtype_text, "auto, float32, float16 or bfloat16 (auto: float32 on CPU, the "
                                           "checkpoint's 16-bit type on CUDA)")
      ->capture_default_str();
  serve->add_option("--max-batch-tokens", config.max_batch_tokens, "Token budget of one batch (count x longest)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-batch-size", config.max_batch_size, "Most sequences in one batch")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-body-bytes", config.server.max_body_bytes, "Largest request body accepted (bytes)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-inputs", config.server.max_inputs, "Most inputs in one embeddings request")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  serve->add_option("--max-connections", config.server.max_connections,
                    "Most connections served at once, one thread each (more wait for a free thread)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  std::vector<std::string> priority_args;
  serve->add_option("--priority", priority_args,
                    "NAME=WEIGHT: the model's share of its device when several models are busy (default 1; "
                    "repeatable)");
  serve->add_option("--log-level", log_level, "debug, info, warn, error or off")->capture_default_str();
  serve->add_flag("--no-access-log", no_access_log, "Do not log one line per request");
  serve->add_option("--plugin", plugin_args, plugin_help);

  auto* models_cmd = cli.add_subcommand("models", "List the supported architectures with their tasks, devices and dtypes");
  models_cmd->add_option("--plugin", plugin_args, plugin_help);
  std::string inspect_dir;
  auto* inspect = cli.add_subcommand("inspect", "Explain what fathom would do with a model directory, without serving it");
  inspect->add_option("DIR", inspect_dir, "A Hugging Face model directory")->required();
  inspect->add_option("--plugin", plugin_args, plugin_help);
  cli.add_subcommand("version", "Print the version");
  app::TranscribeConfig tconfig;
  std::vector<std::string> tfiles;
  std::string tmodel, tdevice = "cpu";
  auto* transcribe = cli.add_subcommand("transcribe", "Transcribe (or translate) audio files offline with a speech model");
  transcribe->add_option("FILE", tfiles, "Audio files (wav, flac, mp3, m4a, ogg, webm, ...)")->required();
  transcribe->add_option("--model", tmodel, "A speech-to-text model directory (Whisper)")->required();
  transcribe->add_option("--format", tconfig.format, "text, json, verbose_json, srt or vtt")->capture_default_str();
  transcribe->add_option("--language", tconfig.language, "Source language code (default: detect)");
  transcribe->add_flag("--translate", tconfig.translate, "Translate into English");
  transcribe->add_option("--prompt", tconfig.prompt, "Text that conditions the decoder");
  transcribe->add_option("--max-tokens", tconfig.max_tokens, "Tokens per 30 s window (0: the model's default)")
      ->check(CLI::NonNegativeNumber);
  transcribe->add_option("--device", tdevice, "cpu, cuda or cuda:N")->capture_default_str();

  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return cli.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return cli.exit(e);
  } catch (const CLI::ParseError& e) {
    cli.exit(e);
    return 2;
  }

  if (cli.got_subcommand("version")) return app::run_version();
  if (!plugin_args.empty()) {
    std::vector<std::filesystem::path> paths(plugin_args.begin(), plugin_args.end());
    auto plugins = models::load_plugins(paths);
    if (!plugins.ok()) {
      std::cerr << "fathom: " << plugins.error().message << "\n";
      return 1;
    }
  }
  if (cli.got_subcommand("models")) return app::run_models();
  if (cli.got_subcommand("inspect")) return app::run_inspect(inspect_dir);
  if (cli.got_subcommand("transcribe")) {
    auto device = parse_device(tdevice);
    if (!device) return usage_error("--device must be cpu, cuda or cuda:N, got '" + tdevice + "'");
    tconfig.device = *device;
    tconfig.model_dir = tmodel;
    for (const auto& f : tfiles) tconfig.files.emplace_back(f);
    set_log_level(LogLevel::kWarn);
    return app::run_transcribe(tconfig);
  }

  // serve
  auto level = parse_log_level(log_level);
  if (!level) return usage_error("--log-level must be debug, info, warn, error or off, got '" + log_level + "'");
  set_log_level(*level);
  auto device = parse_device(device_text);
  if (!device) return usage_error("--device must be cpu, cuda or cuda:N, got '" + device_text + "'");
  config.device = *device;
  if (dtype_text != "auto") {
    auto dtype = parse_dtype(dtype_text);
    if (!dtype || !is_float(*dtype)) {
      return usage_error("--dtype must be auto, float32, float16 or bfloat16, got '" + dtype_text + "'");
    }
    config.dtype = *dtype;
  }
  for (const auto& m : model_args) {
    auto spec = app::parse_model_spec(m);
    if (spec.name.empty() || spec.dir.empty()) return usage_error("--model must be [NAME=]DIR, got '" + m + "'");
    config.models.push_back(spec);
  }
  for (const auto& p : priority_args) {
    auto eq = p.find('=');
    double weight = 0;
    try {
      if (eq != std::string::npos) weight = std::stod(p.substr(eq + 1));
    } catch (...) {
    }
    if (eq == std::string::npos || eq == 0 || !(weight > 0)) {
      return usage_error("--priority must be NAME=WEIGHT with a positive weight, got '" + p + "'");
    }
    config.priorities[p.substr(0, eq)] = weight;
  }
  config.server.access_log = !no_access_log;
  return app::run_serve(std::move(config));
}
