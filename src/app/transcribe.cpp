// `fathom transcribe FILE... --model DIR`: offline speech-to-text without a server. Every file becomes one
// job and all jobs are stepped together (the same continuous batching the server uses).
#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>

#include <unistd.h>

#include "app/commands.h"
#include "app/progress_bar.h"
#include "formats/audio/audio.h"
#include "hub/resolve.h"
#include "formats/mel/log_mel.h"
#include "models/registry.h"
#include "server/routes_audio_format.h"

namespace fathom::app {
namespace {

constexpr double kSampleRate = 16000.0;
constexpr double kProgressMinSeconds = 30.0;  // `--progress auto` shows the bar above this much audio

// Seconds of audio the jobs have processed; a job that reports no progress counts once it is done.
double seconds_done(const std::vector<models::SpeechJob*>& jobs, const std::vector<double>& durations) {
  double done = 0;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const double s = jobs[i]->seconds_done();
    done += s >= 0 ? std::min(s, durations[i]) : (jobs[i]->done() ? durations[i] : 0.0);
  }
  return done;
}

Result<std::unique_ptr<models::SpeechJob>> start_file(models::SpeechToText& stt, const std::filesystem::path& file,
                                                      const models::SpeechOptions& options, double& duration) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + file.string());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  FATHOM_ASSIGN_OR_RETURN(formats::AudioBuffer audio, formats::decode_audio(bytes));
  duration = static_cast<double>(audio.samples.size()) / kSampleRate;
  return stt.start(std::move(audio.samples), options);
}

}  // namespace

int run_transcribe(const TranscribeConfig& config) {
  auto format = server::parse_audio_format(config.format);
  if (!format) {
    std::cerr << "fathom transcribe: --format must be text, json, verbose_json, srt or vtt, got '" << config.format << "'\n";
    return 2;
  }
  models::LoadOptions load;
  load.device = config.device;
  load.dtype = config.dtype;
  auto model_dir = hub::resolve_model_dir(config.model_dir.string());
  if (!model_dir.ok()) {
    std::cerr << "fathom transcribe: " << model_dir.error().message << "\n";
    return 1;
  }
  auto model = models::Registry::global().load(model_dir.value(), load);
  if (!model.ok()) {
    std::cerr << "fathom transcribe: " << model.error().message << "\n";
    return 1;
  }
  models::SpeechToText* stt = (*model)->as_speech_to_text();
  if (!stt) {
    std::cerr << "fathom transcribe: " << config.model_dir.string() << " (" << (*model)->info().name
              << ") is not a speech-to-text model\n";
    return 1;
  }
  models::SpeechOptions options;
  options.language = config.language;
  options.translate = config.translate;
  options.prompt = config.prompt;
  options.timestamps = *format == server::AudioFormat::kSrt || *format == server::AudioFormat::kVtt ||
                       *format == server::AudioFormat::kVerboseJson;
  options.max_new_tokens = config.max_tokens;

  int exit_code = 0;
  std::vector<std::unique_ptr<models::SpeechJob>> jobs(config.files.size());
  std::vector<models::SpeechJob*> running;
  std::vector<double> durations;
  for (std::size_t i = 0; i < config.files.size(); ++i) {
    double duration = 0;
    auto job = start_file(*stt, config.files[i], options, duration);
    if (!job.ok()) {
      std::cerr << "fathom transcribe: " << config.files[i].string() << ": " << job.error().message << "\n";
      exit_code = 1;
      continue;
    }
    jobs[i] = std::move(job).value();
    running.push_back(jobs[i].get());
    durations.push_back(duration);
  }
  double total_seconds = 0;
  for (double d : durations) total_seconds += d;
  const bool show_progress = config.progress == "always" ||
                             (config.progress == "auto" && isatty(STDERR_FILENO) && total_seconds > kProgressMinSeconds);
  std::optional<ProgressBar> progress;
  if (show_progress && !running.empty()) progress.emplace(std::cerr, total_seconds);
  while (true) {
    bool all_done = true;
    for (auto* j : running) all_done = all_done && j->done();
    if (all_done) break;
    stt->step(running);
    if (progress) progress->update(seconds_done(running, durations));
  }
  if (progress) progress->finish(seconds_done(running, durations));
  const char* task = config.translate ? "translate" : "transcribe";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (!jobs[i]) continue;
    auto r = jobs[i]->result();
    if (!r.ok()) {
      std::cerr << "fathom transcribe: " << config.files[i].string() << ": " << r.error().message << "\n";
      exit_code = 1;
      continue;
    }
    if (jobs.size() > 1) std::cout << "==> " << config.files[i].string() << " <==\n";
    std::string out = server::format_transcription(r.value(), *format, task);
    std::cout << out;
    if (out.empty() || out.back() != '\n') std::cout << "\n";
  }
  std::cout.flush();
  return exit_code;
}

}  // namespace fathom::app
