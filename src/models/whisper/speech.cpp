#include "models/whisper/speech.h"

#include <cmath>

#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/whisper/transcription.h"

namespace fathom::models::whisper {
namespace {

Error invalid(const std::string& message, const std::string& param) {
  return make_error(ErrorCode::kInvalidArgument, message, param);
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

WhisperSpeech::WhisperSpeech(WhisperBackend& backend, std::shared_ptr<const formats::Tokenizer> tokenizer,
                             GenerationConfig gen, int max_beams)
    : backend_(backend), tok_(std::move(tokenizer)), gen_(std::move(gen)), max_beams_(max_beams) {}

std::vector<std::string> WhisperSpeech::languages() const {
  std::vector<std::string> out;
  if (!gen_.is_multilingual) return out;
  for (const auto& [code, id] : gen_.lang_to_id) out.push_back(code);
  return out;
}

Result<std::unique_ptr<SpeechJob>> WhisperSpeech::start(std::vector<float> samples, const SpeechOptions& options) {
  const double duration_s = static_cast<double>(samples.size()) / formats::kWhisperSampleRate;
  const int n_mels = backend_.num_mel_bins();
  if (backend_.computes_log_mel() && !samples.empty() && static_cast<int64_t>(samples.size()) <= formats::kWhisperChunkSamples)
    return start_job({}, formats::kWhisperChunkFrames, duration_s, options, std::move(samples));
  auto mel = static_cast<int64_t>(samples.size()) <= formats::kWhisperChunkSamples
                 ? formats::whisper_log_mel_30s(samples, n_mels)
                 : formats::whisper_log_mel_long(samples, n_mels, 2);
  if (!mel.ok()) {
    Error e = mel.error();
    if (e.param.empty()) e.param = "file";
    return e;
  }
  const int frames = static_cast<int>(mel->n_frames);
  return start_mel(std::move(mel.value().data), frames, duration_s, options);
}

Result<std::unique_ptr<SpeechJob>> WhisperSpeech::start_mel(std::vector<float> mel, int frames, double duration_s,
                                                            const SpeechOptions& o) {
  return start_job(std::move(mel), frames, duration_s, o, {});
}

Result<std::unique_ptr<SpeechJob>> WhisperSpeech::start_job(std::vector<float> mel, int frames, double duration_s,
                                                            const SpeechOptions& o, std::vector<float> samples) {
  const int n_mels = backend_.num_mel_bins();
  if (frames <= 0 || (samples.empty() && mel.size() != static_cast<std::size_t>(n_mels) * static_cast<std::size_t>(frames)))
    return invalid("log-mel input must be " + std::to_string(n_mels) + " x frames floats, got " +
                       std::to_string(mel.size()) + " for " + std::to_string(frames) + " frames",
                   "file");
  JobSetup setup;
  WindowOptions& w = setup.window;
  if (!o.language.empty()) {
    if (gen_.is_multilingual) {
      FATHOM_ASSIGN_OR_RETURN(std::string code, normalize_language(gen_, o.language));
      w.language = code;
    } else if (o.language != "en" && o.language != "english") {
      return invalid("this model is English-only; `language` must be \"en\", got \"" + o.language + "\"", "language");
    }
  }
  if (o.translate && (!gen_.is_multilingual || !gen_.task_to_id.count("translate")))
    return make_error(ErrorCode::kUnsupported, "this model cannot translate (English-only vocabulary)", "model");
  w.translate = o.translate;
  w.timestamps = o.timestamps;
  if (!(o.temperature >= 0.0f && o.temperature <= 2.0f))
    return invalid("`temperature` must be between 0 and 2, got " + std::to_string(o.temperature), "temperature");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f))
    return invalid("`top_p` must be in (0, 1], got " + std::to_string(o.top_p), "top_p");
  if (o.beams < 1 || o.beams > max_beams_)
    return invalid("`n` (beam width) must be between 1 and " + std::to_string(max_beams_) + ", got " +
                       std::to_string(o.beams),
                   "n");
  if (o.beams > 1 && o.temperature > 0.0f)
    return invalid("beam search (`use_beam_search`/`n` > 1) needs `temperature` 0", "temperature");
  w.temperature = o.temperature;
  if (o.temperatures.size() >= 2) {  // a fallback schedule (fewer entries: off, `temperature` decides)
    for (std::size_t i = 0; i < o.temperatures.size(); ++i) {
      const float t = o.temperatures[i];
      if (!(t >= 0.0f && t <= 2.0f) || (i > 0 && !(t > o.temperatures[i - 1])))
        return invalid("the `temperature` fallback schedule must increase within [0, 2]", "temperature");
    }
    if (o.beams > 1)
      return invalid("temperature fallback decodes one hypothesis per temperature; it cannot be combined with beam "
                     "search (`use_beam_search`/`n` > 1)",
                     "temperature");
    setup.fallback = {o.temperatures, o.compression_ratio_threshold, o.logprob_threshold, o.no_speech_threshold};
  }
  w.top_p = o.top_p;
  w.seed = o.seed;
  w.beams = o.beams;
  if (!trim(o.prompt).empty()) {
    if (!gen_.prev_sot_token_id)
      return invalid("this model has no <|startofprev|> token; `prompt` is not supported", "prompt");
    formats::EncodeOptions eo;
    eo.add_special_tokens = false;
    FATHOM_ASSIGN_OR_RETURN(w.previous, tok_->encode(" " + trim(o.prompt), eo));
  }
  const int max_pos = backend_.max_target_positions();
  const int keep_prev = std::min<int>(static_cast<int>(w.previous.size()), max_pos / 2 - 1);
  const int prompt_len = (keep_prev > 0 ? keep_prev + 1 : 0) + 4;
  const int room = max_pos - prompt_len;
  if (o.max_new_tokens < 0) return invalid("`max_completion_tokens` must be positive", "max_completion_tokens");
  if (o.max_new_tokens > room)
    return make_error(ErrorCode::kTooLarge,
                      "`max_completion_tokens` " + std::to_string(o.max_new_tokens) + " exceeds the model's limit of " +
                          std::to_string(room) + " tokens per 30 s window (after the prompt)",
                      "max_completion_tokens");
  w.max_new_tokens = o.max_new_tokens > 0 ? o.max_new_tokens : std::min(room, max_pos / 2);
  auto tok = tok_;
  TextDecoder decode = [tok](const std::vector<int32_t>& ids) {
    auto r = tok->decode(ids, true);
    return r.ok() ? r.value() : std::string();
  };
  return std::unique_ptr<SpeechJob>(std::make_unique<TranscriptionJob>(std::move(decode), gen_, backend_.vocab_size(), max_pos,
                                                                       n_mels, std::move(mel), frames, duration_s,
                                                                       std::move(setup), std::move(samples)));
}

void WhisperSpeech::step(const std::vector<SpeechJob*>& jobs) {
  std::vector<TranscriptionJob*> mine;
  mine.reserve(jobs.size());
  for (auto* j : jobs)
    if (auto* t = dynamic_cast<TranscriptionJob*>(j)) mine.push_back(t);
  step_jobs(backend_, mine);
}

void WhisperSpeech::cancel(SpeechJob* job) {
  auto* t = dynamic_cast<TranscriptionJob*>(job);
  if (!t || t->done()) return;
  backend_.release_slots(t->fail(make_error(ErrorCode::kUnavailable, "the transcription was cancelled")));
}

Result<Transcription> WhisperSpeech::transcribe(std::vector<float> mel, int frames, double duration_s,
                                                const SpeechOptions& options) {
  FATHOM_ASSIGN_OR_RETURN(auto job, start_mel(std::move(mel), frames, duration_s, options));
  std::vector<SpeechJob*> jobs{job.get()};
  // Bounded: every step either advances a decoder or starts a window.
  for (int guard = 0; !job->done() && guard < 1000000; ++guard) step(jobs);
  if (!job->done()) return make_error(ErrorCode::kInternal, "transcription did not finish");
  return job->result();
}

}  // namespace fathom::models::whisper
