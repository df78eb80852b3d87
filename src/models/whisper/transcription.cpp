#include "models/whisper/transcription.h"

#include <algorithm>

#include "backends/cpu/parallel.h"
#include "formats/mel/log_mel.h"
#include "formats/tokenizer/tokenizer.h"

namespace fathom::models::whisper {

std::string TranscriptionJob::text_of(const std::vector<int32_t>& tokens) const {
  std::vector<int32_t> text;
  for (auto t : tokens)
    if (t < gen_.eos_token_id) text.push_back(t);
  return text.empty() ? std::string() : decode_(text);
}

TranscriptionJob::TranscriptionJob(TextDecoder decode, const GenerationConfig& gen,
                                   int vocab_size, int max_positions, int n_mels, std::vector<float> mel, int frames,
                                   double duration_s, JobSetup setup, std::vector<float> samples)
    : decode_(std::move(decode)), gen_(gen), vocab_(vocab_size), max_positions_(max_positions), n_mels_(n_mels),
      mel_(std::move(mel)), samples_(std::move(samples)), frames_(frames), max_frames_(std::max(frames, kWindowFrames)), setup_(std::move(setup)) {
  out_.duration = duration_s;
  if (frames_ > kWindowFrames) setup_.window.timestamps = true;  // long audio is cut at timestamps
  if (setup_.window.language) {
    out_.language = *setup_.window.language;
    out_.language_prob = 1.0;
  }
}

std::span<const float> TranscriptionJob::window_audio() const {
  if (samples_.empty() || seek_ != 0) return {};
  return samples_;
}

std::vector<float> TranscriptionJob::window_mel() {
  if (mel_.empty() && !samples_.empty()) {
    // A later window of audio whose first window the backend encoded from samples.
    auto mel = formats::whisper_log_mel_30s(samples_, n_mels_);
    if (mel.ok()) mel_ = std::move(mel.value().data);
    else mel_.assign(static_cast<std::size_t>(n_mels_) * static_cast<std::size_t>(frames_), setup_.window_pad_value);
  }
  std::vector<float> w(static_cast<std::size_t>(n_mels_) * kWindowFrames, setup_.window_pad_value);
  const int n = std::max(0, std::min(kWindowFrames, frames_ - seek_));
  for (int m = 0; m < n_mels_; ++m) {
    const float* src = mel_.data() + static_cast<std::size_t>(m) * frames_ + seek_;
    std::copy(src, src + n, w.data() + static_cast<std::size_t>(m) * kWindowFrames);
  }
  return w;
}

void TranscriptionJob::start_window(std::vector<int> slots) {
  slots_ = std::move(slots);
  window_frames_ = std::min(kWindowFrames, max_frames_ - seek_);
  start_attempt(0);
}

void TranscriptionJob::start_attempt(std::size_t attempt) {
  attempt_ = attempt;
  WindowOptions w = setup_.window;
  if (setup_.fallback.enabled()) {
    w.temperature = setup_.fallback.temperatures[attempt];
    w.seed = setup_.window.seed + attempt;  // each attempt samples differently
  }
  decoder_.emplace(gen_, vocab_, max_positions_, std::move(w), slots_);
}

std::vector<int> TranscriptionJob::finish_window() {
  const WindowResult& r = decoder_->result();
  if (!r.language.empty() && !setup_.window.language) {
    setup_.window.language = r.language;  // detected once, on the first window
    out_.language = r.language;
    out_.language_prob = r.language_prob;
  }
  WindowSplit split = split_window(r.tokens, gen_.timestamp_begin(), seek_, window_frames_);
  std::vector<int32_t> window_tokens;
  for (const auto& s : split.segments) window_tokens.insert(window_tokens.end(), s.tokens.begin(), s.tokens.end());
  const double ratio = compression_ratio(text_of(window_tokens));
  const FallbackOptions& fb = setup_.fallback;
  if (fb.enabled() && attempt_ + 1 < fb.temperatures.size() && needs_fallback(fb, ratio, r.avg_logprob, r.no_speech_prob)) {
    start_attempt(attempt_ + 1);  // same window, same slots (the encoder output stays), next temperature
    return {};
  }
  const float temperature = fb.enabled() ? fb.temperatures[attempt_] : setup_.window.temperature;
  if (window_is_silent(fb, r.avg_logprob, r.no_speech_prob)) {
    split.segments.clear();  // silence: no segment, the seek passes the whole window
    window_tokens.clear();
    split.advance_frames = window_frames_;
  }
  for (auto& s : split.segments) {
    SpeechSegment seg;
    seg.id = static_cast<int>(out_.segments.size());
    seg.seek = seek_;
    seg.start = s.start;
    seg.end = std::min(s.end, std::max(out_.duration, s.start));
    if (!setup_.window.timestamps) seg.end = std::min(out_.duration, (seek_ + window_frames_) * kFrameSeconds);
    seg.text = text_of(s.tokens);
    seg.tokens = s.tokens;
    seg.temperature = temperature;
    seg.avg_logprob = r.avg_logprob;
    seg.compression_ratio = ratio;
    seg.no_speech_prob = r.no_speech_prob;
    out_.segments.push_back(std::move(seg));
  }
  out_.tokens.insert(out_.tokens.end(), window_tokens.begin(), window_tokens.end());
  for (auto t : window_tokens)
    if (t < gen_.eos_token_id) text_tokens_.push_back(t);
  seek_ += split.advance_frames;
  seconds_done_.store(std::min(out_.duration, seek_ * kFrameSeconds));
  decoder_.reset();
  auto slots = std::move(slots_);
  slots_.clear();
  if (seek_ >= max_frames_) {
    out_.text = text_of(text_tokens_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      text_ = out_.text;
      shown_.clear();
      shown_dirty_ = false;
    }
    seconds_done_.store(out_.duration);
    done_.store(true);
  } else {
    refresh_text();
  }
  return slots;
}

std::vector<int> TranscriptionJob::fail(Error error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    error_ = std::move(error);
  }
  decoder_.reset();
  auto slots = std::move(slots_);
  slots_.clear();
  done_.store(true);
  return slots;
}

void TranscriptionJob::refresh_text() {
  std::lock_guard<std::mutex> lock(mu_);
  shown_.assign(text_tokens_.begin(), text_tokens_.end());  // reuses shown_'s capacity
  // Partial text of the running window only when it cannot be taken back: without timestamps (a window's
  // tail after its last timestamp pair may be dropped) and without beams (the leader may change).
  // With temperature fallback the running attempt may be discarded, so only finished windows are shown.
  if (decoder_ && !setup_.window.timestamps && setup_.window.beams <= 1 && !setup_.fallback.enabled())
    for (auto t : decoder_->partial_view())
      if (t < gen_.eos_token_id) shown_.push_back(t);
  shown_dirty_ = true;
}

std::string TranscriptionJob::text_so_far() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (shown_dirty_) {
    // Decoded lazily: only callers that watch the text (streaming) pay for the tokenizer.
    shown_dirty_ = false;
    std::string text = shown_.empty() ? std::string() : decode_(shown_);
    formats::trim_trailing_replacement(text);
    if (text.size() > text_.size() && text.compare(0, text_.size(), text_) == 0) text_ = std::move(text);
  }
  return text_;
}

Result<Transcription> TranscriptionJob::result() const {
  if (!done()) return make_error(ErrorCode::kInternal, "transcription is not finished");
  std::lock_guard<std::mutex> lock(mu_);
  if (error_) return *error_;
  return out_;
}

void step_jobs(WhisperBackend& backend, const std::vector<TranscriptionJob*>& jobs) {
  // 1. Start windows while cache slots last; encode them in one batch.
  // Jobs whose window comes as audio (the backend computes its log-mel) and as host mels: one encoder
  // batch each.
  struct Group {
    std::vector<TranscriptionJob*> jobs;
    std::vector<std::vector<float>> mels;
    std::vector<std::span<const float>> inputs;
    std::vector<std::vector<int>> slots;
  };
  Group audio, mel;
  for (auto* job : jobs) {
    if (!job->needs_window() || backend.free_slots() < job->beams()) continue;
    auto s = backend.acquire_slots(job->beams());
    if (!s.ok()) continue;
    auto samples = backend.computes_log_mel() ? job->window_audio() : std::span<const float>();
    Group& g = samples.empty() ? mel : audio;
    g.jobs.push_back(job);
    g.slots.push_back(std::move(s).value());
    if (samples.empty()) g.mels.push_back(job->window_mel());
    else g.inputs.push_back(samples);
  }
  for (Group* g : {&audio, &mel}) {
    if (g->jobs.empty()) continue;
    Status st = Status::Ok();
    if (g == &audio) {
      st = backend.encode_audio(g->inputs, g->slots);
    } else {
      std::vector<std::span<const float>> views(g->mels.begin(), g->mels.end());
      st = backend.encode(views, g->slots);
    }
    for (std::size_t i = 0; i < g->jobs.size(); ++i) {
      if (st.ok()) {
        g->jobs[i]->start_window(std::move(g->slots[i]));
      } else {
        backend.release_slots(g->slots[i]);
        g->jobs[i]->fail(st.error());
      }
    }
  }
  // 2. One batched decoder call over every running window.
  std::vector<TranscriptionJob*> running;
  std::vector<DecodeRow> rows;
  std::vector<std::size_t> first_row;
  for (auto* job : jobs) {
    if (job->done() || !job->decoder()) continue;
    auto r = job->decoder()->rows();
    running.push_back(job);
    first_row.push_back(rows.size());
    for (auto& row : r) rows.push_back(std::move(row));
  }
  if (rows.empty()) return;
  auto logits = backend.decode(rows);
  const std::size_t vocab = static_cast<std::size_t>(backend.vocab_size());
  if (!logits.ok()) {
    for (auto* job : running) backend.release_slots(job->fail(logits.error()));
    return;
  }
  // Advance every job on the host in parallel (each touches only its own decoder: the logits rules and
  // softmax over the vocabulary per row, and the partial text); then the slot bookkeeping serially.
  std::vector<Status> advanced(running.size(), Status::Ok());
  cpu::parallel_for(static_cast<int64_t>(running.size()), 1, [&](int64_t begin, int64_t end, int) {
    for (int64_t k = begin; k < end; ++k) {
      const std::size_t i = static_cast<std::size_t>(k);
      TranscriptionJob* job = running[i];
      const std::size_t stop = i + 1 < running.size() ? first_row[i + 1] : rows.size();
      std::span<float> mine(logits.value().data() + first_row[i] * vocab, (stop - first_row[i]) * vocab);
      try {
        advanced[i] = job->decoder()->advance(mine);
        if (advanced[i].ok() && !job->decoder()->done()) job->refresh_text();
      } catch (const std::exception& e) {
        advanced[i] = make_error(ErrorCode::kInternal, std::string("whisper decoding: ") + e.what());
      }
    }
  });
  for (std::size_t i = 0; i < running.size(); ++i) {
    TranscriptionJob* job = running[i];
    if (!advanced[i].ok()) {
      backend.release_slots(job->fail(advanced[i].error()));
    } else if (job->decoder()->done()) {
      backend.release_slots(job->finish_window());
    }
  }
}

}  // namespace fathom::models::whisper
