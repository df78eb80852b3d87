// fathom: an OpenAI-compatible inference server for embedding and speech-to-text models.
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "app/commands.h"
#include "app/serve_flags.h"
#include "base/log.h"
#include "models/plugin_loader.h"
#include "runtime/device.h"
#include "runtime/host_allocator.h"

namespace {

int usage_error(const std::string& message) {
  std::cerr << "fathom: " << message << "\nRun 'fathom --help' for usage.\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fathom;
  tune_host_allocator();  // before any thread starts (runtime/host_allocator.h)
  CLI::App cli{"fathom: an OpenAI-compatible inference server for embedding and speech-to-text models", "fathom"};
  cli.require_subcommand(1);
  cli.set_version_flag("--version", std::string(FATHOM_VERSION));

  app::ServeConfig config;
  config.argv0 = argc > 0 ? argv[0] : "fathom";
  std::vector<std::string> plugin_args;
  const char* plugin_help =
      "PATH: a model plugin (shared library, see docs/adding-a-model.md) whose architectures are registered "
      "before anything else (repeatable)";

  app::ServeFlags serve_flags;
  auto* serve = cli.add_subcommand("serve", "Serve models over an OpenAI-compatible HTTP API");
  app::add_serve_flags(*serve, serve_flags);
  serve->add_option("--plugin", plugin_args, plugin_help);

  auto* models_cmd = cli.add_subcommand("models", "List the supported architectures with their tasks, devices and dtypes");
  models_cmd->add_option("--plugin", plugin_args, plugin_help);
  std::string inspect_dir;
  auto* inspect = cli.add_subcommand("inspect", "Explain what fathom would do with a model directory, without serving it");
  inspect->add_option("MODEL", inspect_dir,
                      "A Hugging Face model directory, or a hub repository ORG/NAME[@REVISION] (downloaded into the hub cache)")
      ->required();
  inspect->add_option("--plugin", plugin_args, plugin_help);
  std::string download_ref;
  auto* download = cli.add_subcommand("download",
                                      "Download a Hugging Face Hub model ORG/NAME[@REVISION] into the hub cache and print its snapshot directory");
  download->add_option("MODEL", download_ref, "ORG/NAME[@REVISION] (REVISION: a branch, tag or commit; default main)")->required();
  cli.add_subcommand("version", "Print the version");
  app::TranscribeConfig tconfig;
  std::vector<std::string> tfiles;
  std::string tmodel, tdevice = "cpu", tdtype = "auto";
  auto* transcribe = cli.add_subcommand("transcribe", "Transcribe (or translate) audio files offline with a speech model");
  transcribe->add_option("FILE", tfiles, "Audio files (wav, flac, mp3, m4a, ogg, webm, ...)")->required();
  transcribe->add_option("--model", tmodel, "A speech-to-text model directory (Whisper, or a plugin architecture), or a hub repository ORG/NAME[@REVISION]")->required();
  transcribe->add_option("--plugin", plugin_args, plugin_help);
  transcribe->add_option("--format", tconfig.format, "text, json, verbose_json, srt or vtt")->capture_default_str();
  transcribe->add_option("--language", tconfig.language, "Source language code (default: detect)");
  transcribe->add_flag("--translate", tconfig.translate, "Translate into English");
  transcribe->add_option("--prompt", tconfig.prompt, "Text that conditions the decoder");
  transcribe->add_option("--max-tokens", tconfig.max_tokens, "Tokens per 30 s window (0: the model's default)")
      ->check(CLI::NonNegativeNumber);
  transcribe->add_option("--device", tdevice, "cpu, cuda or cuda:N")->capture_default_str();
  transcribe->add_option("--dtype", tdtype,
                         "auto, float32, float16 or bfloat16 (auto: float32 on CPU, the checkpoint's 16-bit type on CUDA)")
      ->capture_default_str();
  transcribe->add_option("--progress", tconfig.progress,
                         "Progress bar on stderr: auto (a terminal and more than 30 s of audio), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();

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
  if (cli.got_subcommand("download")) return app::run_download(download_ref);
  if (cli.got_subcommand("transcribe")) {
    auto device = parse_device(tdevice);
    if (!device) return usage_error("--device must be cpu, cuda or cuda:N, got '" + tdevice + "'");
    tconfig.device = *device;
    if (tdtype != "auto") {
      auto dt = parse_dtype(tdtype);
      if (!dt || !is_float(*dt)) return usage_error("--dtype must be auto, float32, float16 or bfloat16, got '" + tdtype + "'");
      tconfig.dtype = *dt;
    }
    tconfig.model_dir = tmodel;
    for (const auto& f : tfiles) tconfig.files.emplace_back(f);
    set_log_level(LogLevel::kWarn);
    return app::run_transcribe(tconfig);
  }

  // serve
  std::string error;
  auto resolved = app::resolve_serve_flags(*serve, serve_flags, &error);
  if (!resolved) return usage_error(error);
  config.config = std::move(*resolved);
  set_log_level(*parse_log_level(config.config.log_level));
  return app::run_serve(std::move(config));
}
