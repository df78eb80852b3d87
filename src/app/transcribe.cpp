// `fathom transcribe FILE... --model DIR`: offline speech-to-text without a server. Every file becomes one
// job and all jobs are stepped together (the same continuous batching the server uses).
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>

#include "app/commands.h"
#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"
#include "models/registry.h"
#include "server/routes_audio_format.h"

namespace fathom::app {
namespace {

Result<std::unique_ptr<models::SpeechJob>> start_file(models::SpeechToText& stt, const std::filesystem::path& file,
                                                      const models::SpeechOptions& options) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return make_error(ErrorCode::kNotFound, "cannot open " + file.string());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
  FATHOM_ASSIGN_OR_RETURN(formats::AudioBuffer audio, formats::decode_audio(bytes));
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
  auto model = models::Registry::global().load(config.model_dir, load);
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
  for (std::size_t i = 0; i < config.files.size(); ++i) {
    auto job = start_file(*stt, config.files[i], options);
    if (!job.ok()) {
      std::cerr << "fathom transcribe: " << config.files[i].string() << ": " << job.error().message << "\n";
      exit_code = 1;
      continue;
    }
    jobs[i] = std::move(job).value();
    running.push_back(jobs[i].get());
  }
  while (true) {
    bool all_done = true;
    for (auto* j : running) all_done = all_done && j->done();
    if (all_done) break;
    stt->step(running);
  }
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
