#include "models/audiollm/funasr_nano_model.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "base/log.h"
#include "models/audiollm/funasr_nano_parts.h"
#include "models/decoder/generator.h"
#include "ops/common.h"
#include "runtime/allocator.h"

namespace fathom::models::audiollm {
namespace {

constexpr int kSampleRate = 16000;
constexpr int kMaxWindowsPerStep = 16;  // windows encoded together in one step (bounds the encoder's activations)
// Whole windows the KV cache is sized to hold at once when no budget says otherwise: 64 on CUDA (continuous
// batching of many requests), 8 on the CPU.
constexpr int kCudaCacheWindows = 64, kCpuCacheWindows = 8;

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The language a transcript's script suggests: kana -> ja, hangul -> ko, han -> zh, latin letters -> en; "" when
// the text holds none of them.
std::string script_language(const std::string& text) {
  int kana = 0, hangul = 0, han = 0, latin = 0;
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    uint32_t cp = c;
    int len = 1;
    if (c >= 0xF0 && i + 3 < text.size()) {
      cp = ((c & 0x07u) << 18) | ((text[i + 1] & 0x3Fu) << 12) | ((text[i + 2] & 0x3Fu) << 6) | (text[i + 3] & 0x3Fu);
      len = 4;
    } else if (c >= 0xE0 && i + 2 < text.size()) {
      cp = ((c & 0x0Fu) << 12) | ((text[i + 1] & 0x3Fu) << 6) | (text[i + 2] & 0x3Fu);
      len = 3;
    } else if (c >= 0xC0 && i + 1 < text.size()) {
      cp = ((c & 0x1Fu) << 6) | (text[i + 1] & 0x3Fu);
      len = 2;
    }
    i += len;
    if (cp >= 0x3040 && cp <= 0x30FF) ++kana;
    else if ((cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF)) ++hangul;
    else if ((cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)) ++han;
    else if ((cp < 0x80 && std::isalpha(static_cast<int>(cp))) || (cp >= 0xC0 && cp <= 0x24F)) ++latin;
  }
  if (kana) return "ja";
  if (hangul) return "ko";
  if (han) return "zh";
  if (latin) return "en";
  return "";
}

bool ascii_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// Joins window texts: a space between two windows whose touching characters are both ASCII letters or digits.
std::string join_windows(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty() && ascii_alnum(out.back()) && ascii_alnum(p.front())) out += ' ';
    out += p;
  }
  return out;
}

// One window of a job's audio: one generation request.
struct Window {
  int64_t begin = 0, end = 0;  // samples
  int request = -1;            // generator request id once submitted
  bool done = false;
  std::vector<int32_t> tokens;  // generated, stop token excluded
};

class NanoJob : public SpeechJob {
 public:
  NanoJob(std::vector<float> samples, std::vector<Window> windows, std::vector<int32_t> before,
          std::vector<int32_t> after, SpeechOptions options, int max_new_tokens, std::string language,
          const formats::Tokenizer& tokenizer)
      : samples(std::move(samples)), windows(std::move(windows)), before(std::move(before)), after(std::move(after)),
        options(std::move(options)), max_new_tokens(max_new_tokens), language(std::move(language)), tokenizer_(tokenizer) {
    out_.duration = static_cast<double>(this->samples.size()) / kSampleRate;
  }

  bool done() const override { return done_.load(std::memory_order_acquire); }

  std::string text_so_far() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (done() && !error_) return out_.text;
    if (!dirty_) return shown_;
    dirty_ = false;
    // Windows in order up to the first unfinished one (later windows may already run; they are shown once
    // every window before them is done).
    std::vector<std::string> parts;
    for (const auto& w : windows) {
      parts.push_back(decode(w.tokens));
      if (!w.done) break;
    }
    std::string text = join_windows(parts);
    formats::trim_trailing_replacement(text);
    if (text.size() > shown_.size() && text.compare(0, shown_.size(), shown_) == 0) shown_ = std::move(text);
    return shown_;
  }

  Result<Transcription> result() const override {
    if (!done()) return make_error(ErrorCode::kInternal, "transcription is not finished");
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) return *error_;
    return out_;
  }

  double seconds_done() const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (done()) return out_.duration;
    int64_t n = 0;
    for (const auto& w : windows)
      if (w.done) n += w.end - w.begin;
    return static_cast<double>(n) / kSampleRate;
  }

  // Device worker only (under the job's lock, since text_so_far() reads the windows).
  void add_token(std::size_t window, int32_t token) {
    std::lock_guard<std::mutex> lock(mu_);
    windows[window].tokens.push_back(token);
    dirty_ = true;
  }
  void finish_window(std::size_t window) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      windows[window].done = true;
      windows[window].request = -1;
      dirty_ = true;
    }
    if (std::all_of(windows.begin(), windows.end(), [](const Window& w) { return w.done; })) complete();
  }
  void fail(Error error) {
    std::lock_guard<std::mutex> lock(mu_);
    if (done()) return;
    error_ = std::move(error);
    done_.store(true, std::memory_order_release);
  }

  // Set at start(), read by the device worker.
  std::vector<float> samples;
  std::vector<Window> windows;
  std::vector<int32_t> before, after;  // prompt ids around the audio placeholder
  SpeechOptions options;
  int max_new_tokens = 0;
  std::string language;  // the requested code; "" to detect from the transcript
  std::size_t submitted = 0;  // windows submitted so far (in order)

 private:
  std::string decode(const std::vector<int32_t>& tokens) const {
    if (tokens.empty()) return {};
    auto text = tokenizer_.decode(tokens, /*skip_special_tokens=*/true);
    return text.ok() ? text.value() : std::string();
  }

  void complete() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < windows.size(); ++i) {
      const auto& w = windows[i];
      SpeechSegment s;
      s.id = static_cast<int>(i);
      s.seek = static_cast<int>(w.begin / 160);  // 10 ms frames
      s.start = static_cast<double>(w.begin) / kSampleRate;
      s.end = static_cast<double>(w.end) / kSampleRate;
      s.text = decode(w.tokens);
      s.tokens = w.tokens;
      s.temperature = options.temperature;
      parts.push_back(s.text);
      out_.tokens.insert(out_.tokens.end(), w.tokens.begin(), w.tokens.end());
      out_.segments.push_back(std::move(s));
    }
    out_.text = join_windows(parts);
    out_.language = language;
    samples = {};
    done_.store(true, std::memory_order_release);
  }

 public:
  // Set by the model at completion when detecting: the detected code, or "unknown".
  void set_detected_language(std::string code) {
    std::lock_guard<std::mutex> lock(mu_);
    out_.language = std::move(code);
  }
  std::string final_text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return out_.text;
  }

 private:
  const formats::Tokenizer& tokenizer_;
  mutable std::mutex mu_;
  std::atomic<bool> done_{false};
  std::optional<Error> error_;
  Transcription out_;
  mutable std::string shown_;
  mutable bool dirty_ = false;
};

class FunAsrNanoModel : public Model, public SpeechToText {
 public:
  FunAsrNanoModel(ModelInfo info, std::string architecture, Device device, DType dtype, Allocator& allocator,
                  FunAsrNanoConfig config)
      : info_(std::move(info)), architecture_(std::move(architecture)), device_(device), dtype_(dtype),
        cfg_(std::move(config)), account_(info_.name),
        workspace_(allocator, &account_) {
    ctx_.device = device_;
    ctx_.allocator = &allocator;
    ctx_.account = &account_;
    ctx_.workspace = &workspace_;
  }

  ~FunAsrNanoModel() override {
    generator_.reset();
    lm_.reset();
    if (runner_) (void)runner_->synchronize();
    adaptor_.reset();
    encoder_.reset();  // device memory goes before the runner's stream
  }

  static Result<std::unique_ptr<FunAsrNanoModel>> load(FunAsrNanoParts parts, std::string architecture,
                                                       const std::filesystem::path& dir, const nlohmann::json& config,
                                                       const LoadOptions& options,
                                                       const ModelInfo& info);

  // Model
  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return architecture_; }
  DType dtype() const override { return dtype_; }
  Device device() const override { return device_; }
  std::size_t memory_bytes() const override { return account_.in_use() + (lm_ ? lm_->memory_bytes() : 0); }
  SpeechToText* as_speech_to_text() override { return this; }

  // SpeechToText
  const formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::vector<std::string> languages() const override {
    std::vector<std::string> out;
    for (const auto& [code, name] : cfg_.prompt.languages) out.push_back(code);
    return out;
  }
  Result<std::unique_ptr<SpeechJob>> start(std::vector<float> samples, const SpeechOptions& options) override;
  void step(const std::vector<SpeechJob*>& jobs) override;
  void cancel(SpeechJob* job) override;

 private:
  struct Owner {
    NanoJob* job = nullptr;
    std::size_t window = 0;
  };
  // The user turn for `options`, or the error naming what the model accepts.
  Result<std::string> user_turn(const SpeechOptions& options, std::string* language) const;
  // Audio rows the adaptor gives for a window of `samples` samples.
  int64_t audio_rows(int64_t samples) const;
  // Features -> encoder -> adaptor -> submitted requests, for the next windows of `jobs`.
  void submit_windows(const std::vector<NanoJob*>& jobs);
  void fail_job(NanoJob* job, const Error& error);
  void finish_window(NanoJob* job, std::size_t window);

  ModelInfo info_;
  std::string architecture_;  // config.json's architecture (FunASRNano, or a plugin's)
  Device device_;
  DType dtype_;
  FunAsrNanoConfig cfg_;
  MemoryAccount account_;  // encoder + adaptor (the decoder keeps its own account)
  Workspace workspace_;
  ExecContext ctx_;
  std::unique_ptr<ops::DeviceRunner> runner_;
  std::optional<formats::Fbank> fbank_;
  formats::Cmvn cmvn_;
  std::unique_ptr<sensevoice::SenseVoiceEncoder> encoder_;
  std::unique_ptr<AudioAdaptor> adaptor_;
  std::unique_ptr<decoder::DecoderLm> lm_;
  std::unique_ptr<decoder::Generator> generator_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  std::optional<formats::ChatTemplate> template_;
  int32_t placeholder_id_ = -1;
  std::unordered_map<int, Owner> owners_;  // generator request -> job window
};

Result<std::unique_ptr<FunAsrNanoModel>> FunAsrNanoModel::load(FunAsrNanoParts parts, std::string architecture,
                                                               const std::filesystem::path& dir, const nlohmann::json& config,
                                                               const LoadOptions& options,
                                                               const ModelInfo& info) {
  const DType dtype = resolve_compute_dtype(config, options);
  if (options.device.kind != DeviceKind::kCpu && options.device.kind != DeviceKind::kCuda)
    return make_error(ErrorCode::kUnsupported, info.name + " runs on cpu or cuda; " + options.device.to_string() +
                                                   " was requested for " + dir.string());
  FATHOM_TRY(prepare_compute(dir, info.name, dtype, options.device));
  Allocator* allocator = allocator_for(options.device);
  if (!allocator)
    return make_error(ErrorCode::kUnsupported, "no allocator for device " + options.device.to_string() + " in this build");
  const FunAsrNanoConfig& cfg = parts.config;
  const decoder::DecoderConfig& dcfg = parts.llm;
  const formats::Checkpoint& ckpt = parts.checkpoint;

  std::unique_ptr<FunAsrNanoModel> m(
      new FunAsrNanoModel(info, std::move(architecture), options.device, dtype, *allocator, cfg));
  if (options.memory_budget) m->account_.set_budget(options.memory_budget);
  FATHOM_ASSIGN_OR_RETURN(m->runner_, ops::DeviceRunner::create(options.device, runner_options(options)));
  m->ctx_.stream = m->runner_->stream();
  FATHOM_ASSIGN_OR_RETURN(m->encoder_, sensevoice::SenseVoiceEncoder::load(ckpt, "audio_encoder.", cfg.encoder, m->ctx_,
                                                                          *m->runner_, dtype));
  FATHOM_ASSIGN_OR_RETURN(m->adaptor_, AudioAdaptor::load(ckpt, "audio_adaptor.", cfg.adaptor, m->ctx_, *m->runner_, dtype));

  // The KV cache holds kCudaCacheWindows / kCpuCacheWindows whole windows (prompt + audio rows + max_new_tokens), within what the
  // budget leaves after the audio front end and the decoder's weights.
  const std::size_t position_bytes = static_cast<std::size_t>(dcfg.num_hidden_layers) * dcfg.num_key_value_heads *
                                     dcfg.head_dim * 2 * dtype_size(dtype);
  const int64_t window_positions =
      256 + m->audio_rows(static_cast<int64_t>(cfg.segment_seconds * kSampleRate) + kSampleRate) + cfg.max_new_tokens;
  const int cache_windows = options.device.kind == DeviceKind::kCuda ? kCudaCacheWindows : kCpuCacheWindows;
  std::size_t kv_bytes =
      std::max<std::size_t>(std::size_t(16) << 20, cache_windows * static_cast<std::size_t>(window_positions) * position_bytes);
  decoder::DecoderLoadOptions lo;
  lo.device = options.device;
  lo.dtype = dtype;
  lo.cuda_graphs = options.cuda_graphs;
  lo.runner = runner_options(options);
  if (options.memory_budget) {
    const std::size_t used = m->account_.in_use();
    lo.memory_budget = options.memory_budget > used ? options.memory_budget - used : 1;
    // Leave the weights (about the checkpoint's llm.* bytes) and a quarter for activations.
    std::size_t weights = 0;
    for (const auto& name : ckpt.names())
      if (name.rfind("llm.", 0) == 0) {
        const auto* t = ckpt.find(name);
        weights += static_cast<std::size_t>(t->numel()) * dtype_size(dtype);
      }
    const std::size_t left = lo.memory_budget > weights ? (lo.memory_budget - weights) * 3 / 4 : 0;
    if (left < kv_bytes) {
      kv_bytes = std::max<std::size_t>(left, std::size_t(1) << 20);
      FATHOM_LOG(kWarn) << dir.string() << ": the memory budget leaves " << (kv_bytes >> 20)
                        << " MiB for the decoder's KV cache";
    }
  }
  lo.kv_cache_bytes = kv_bytes;
  FATHOM_ASSIGN_OR_RETURN(m->lm_, decoder::DecoderLm::load(ckpt, "llm.", dcfg, lo));
  // Requests run together only as far as the cache holds them whole, so a running window never runs out.
  decoder::GeneratorOptions go;
  const int64_t cache_positions = static_cast<int64_t>(m->lm_->cache().num_blocks()) * lo.kv_block_size;
  go.max_sequences = static_cast<int>(std::clamp<int64_t>(cache_positions / window_positions, 1, 64));
  m->generator_ = std::make_unique<decoder::Generator>(*m->lm_, go);
  m->tokenizer_ = std::move(parts.tokenizer);
  m->template_ = std::move(parts.chat_template);
  m->placeholder_id_ = parts.placeholder_id;
  m->cmvn_ = std::move(parts.cmvn);
  m->fbank_.emplace(std::move(parts.fbank));
  return m;
}

int64_t FunAsrNanoModel::audio_rows(int64_t samples) const {
  const int64_t flen = fbank_ ? fbank_->frame_length() : cfg_.fbank.sample_rate * cfg_.fbank.frame_length_ms / 1000;
  const int64_t shift = static_cast<int64_t>(cfg_.fbank.sample_rate * cfg_.fbank.frame_shift_ms / 1000);
  const int64_t frames = samples < flen ? 0 : 1 + (samples - flen) / shift;
  const int64_t lfr = (frames + cfg_.lfr_n - 1) / cfg_.lfr_n;
  return (lfr + cfg_.adaptor.downsample_rate - 1) / cfg_.adaptor.downsample_rate;
}

Result<std::string> FunAsrNanoModel::user_turn(const SpeechOptions& options, std::string* language) const {
  std::string user = cfg_.prompt.user;
  if (!options.language.empty()) {
    std::string accepted;
    for (const auto& [code, name] : cfg_.prompt.languages) accepted += (accepted.empty() ? "" : ", ") + code;
    if (cfg_.prompt.language_user.empty() || cfg_.prompt.languages.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "language '" + options.language +
                            "' cannot be selected: this model's prompt takes no language (omit it; the model decides)");
    const std::string want = lower(options.language);
    const auto it = std::find_if(cfg_.prompt.languages.begin(), cfg_.prompt.languages.end(),
                                 [&](const auto& l) { return lower(l.first) == want || l.second == options.language; });
    if (it == cfg_.prompt.languages.end())
      return make_error(ErrorCode::kInvalidArgument,
                        "language '" + options.language + "' is not one this model transcribes; it accepts " + accepted);
    user = replace_all(cfg_.prompt.language_user, "{language}", it->second);
    *language = it->first;
  }
  if (!options.prompt.empty()) {
    if (cfg_.prompt.context.empty())
      return make_error(ErrorCode::kInvalidArgument, "this model takes no prompt (its config.json prompt has no context)");
    user = replace_all(cfg_.prompt.context, "{prompt}", options.prompt) + user;
  }
  return user;
}

Result<std::unique_ptr<SpeechJob>> FunAsrNanoModel::start(std::vector<float> samples, const SpeechOptions& options) {
  if (options.translate)
    return make_error(ErrorCode::kUnsupported,
                      "funasr-nano models transcribe only; translation is not supported (use /v1/audio/transcriptions)");
  if (options.beams > 1)
    return make_error(ErrorCode::kInvalidArgument, "funasr-nano models decode greedily or by sampling; beams > 1 is not supported");
  if (options.temperatures.size() >= 2)
    return make_error(ErrorCode::kInvalidArgument,
                      "this audio-LLM decodes at one temperature; a `temperature` fallback schedule is not supported",
                      "temperature");
  decoder::SamplingParams sp;
  sp.temperature = options.temperature;
  sp.top_p = options.top_p;
  if (Status s = decoder::validate_sampling(sp); !s.ok()) return s.error();
  if (static_cast<int64_t>(samples.size()) < fbank_->frame_length())
    return make_error(ErrorCode::kInvalidArgument, "the audio is too short: " + std::to_string(samples.size()) +
                                                       " samples at 16 kHz (at least " +
                                                       std::to_string(fbank_->frame_length()) + ", one 25 ms frame)");
  std::string language;
  FATHOM_ASSIGN_OR_RETURN(auto user, user_turn(options, &language));
  nlohmann::ordered_json context = {
      {"messages", nlohmann::ordered_json::array({{{"role", "system"}, {"content", cfg_.prompt.system}},
                                                  {{"role", "user"}, {"content", user}}})},
      {"add_generation_prompt", true}};
  FATHOM_ASSIGN_OR_RETURN(auto text, template_->render(context));
  formats::EncodeOptions eo;
  eo.add_special_tokens = false;
  FATHOM_ASSIGN_OR_RETURN(auto ids, tokenizer_->encode(text, eo));
  const auto n_placeholders = std::count(ids.begin(), ids.end(), placeholder_id_);
  if (n_placeholders != 1)
    return make_error(ErrorCode::kInvalidArgument, "the prompt must not contain the audio placeholder '" +
                                                       cfg_.prompt.placeholder + "'");
  const auto at = std::find(ids.begin(), ids.end(), placeholder_id_);
  std::vector<int32_t> before(ids.begin(), at), after(at + 1, ids.end());

  // Windows of segment_seconds; a tail shorter than one second joins the window before it.
  const int64_t n = static_cast<int64_t>(samples.size());
  const int64_t span = static_cast<int64_t>(cfg_.segment_seconds * kSampleRate);
  std::vector<Window> windows;
  for (int64_t b = 0; b < n; b += span) {
    const int64_t e = std::min(n, b + span);
    if (!windows.empty() && e - b < kSampleRate) windows.back().end = e;
    else {
      Window w;
      w.begin = b;
      w.end = e;
      windows.push_back(std::move(w));
    }
  }
  int64_t longest = 0;
  for (const auto& w : windows) longest = std::max(longest, w.end - w.begin);
  const int64_t prompt_positions = static_cast<int64_t>(before.size() + after.size()) + audio_rows(longest);
  const int64_t max_positions = lm_->config().max_position_embeddings;
  if (prompt_positions >= max_positions)
    return make_error(ErrorCode::kInvalidArgument, "the prompt and audio take " + std::to_string(prompt_positions) +
                                                       " positions; the decoder holds " + std::to_string(max_positions));
  int max_new = options.max_new_tokens > 0 ? options.max_new_tokens : cfg_.max_new_tokens;
  max_new = static_cast<int>(std::min<int64_t>(max_new, max_positions - prompt_positions));
  return std::unique_ptr<SpeechJob>(new NanoJob(std::move(samples), std::move(windows), std::move(before),
                                                std::move(after), options, max_new, std::move(language), *tokenizer_));
}

void FunAsrNanoModel::fail_job(NanoJob* job, const Error& error) {
  for (auto& w : job->windows)
    if (w.request >= 0) {
      generator_->cancel(w.request);
      owners_.erase(w.request);
      w.request = -1;
    }
  job->fail(error);
}

void FunAsrNanoModel::finish_window(NanoJob* job, std::size_t window) {
  job->finish_window(window);
  if (job->done() && job->language.empty()) {
    const std::string found = script_language(job->final_text());
    const bool known = std::any_of(cfg_.prompt.languages.begin(), cfg_.prompt.languages.end(),
                                   [&](const auto& l) { return l.first == found; });
    job->set_detected_language(known || (cfg_.prompt.languages.empty() && !found.empty()) ? found : "unknown");
  }
}

void FunAsrNanoModel::submit_windows(const std::vector<NanoJob*>& jobs) {
  struct Pending {
    NanoJob* job;
    std::size_t window;
    std::vector<float> features;
  };
  std::vector<Pending> pending;
  const int dim = cfg_.fbank.num_mel_bins;
  for (NanoJob* job : jobs) {
    while (job->submitted < job->windows.size() && static_cast<int>(pending.size()) < kMaxWindowsPerStep) {
      const auto& w = job->windows[job->submitted];
      std::vector<float> clip(job->samples.begin() + w.begin, job->samples.begin() + w.end);
      int frames = 0, rows = 0;
      auto fb = fbank_->compute(clip, &frames);
      auto lfr = formats::apply_lfr(fb, frames, dim, cfg_.lfr_m, cfg_.lfr_n, &rows);
      formats::apply_cmvn(cmvn_, lfr);
      pending.push_back({job, job->submitted, std::move(lfr)});
      ++job->submitted;
    }
  }
  if (pending.empty()) return;
  std::vector<std::span<const float>> feats;
  for (const auto& p : pending) feats.emplace_back(p.features);
  auto fail_all = [&](const Error& e) {
    for (const auto& p : pending) fail_job(p.job, e);
  };
  auto encoded = encoder_->encode(feats);
  if (!encoded.ok()) return fail_all(encoded.error());
  std::vector<std::span<const float>> frames;
  for (const auto& e : encoded.value()) frames.emplace_back(e);
  auto embedded = adaptor_->forward(frames);
  if (!embedded.ok()) return fail_all(embedded.error());
  for (std::size_t i = 0; i < pending.size(); ++i) {
    NanoJob* job = pending[i].job;
    if (job->done()) continue;  // failed by an earlier window
    decoder::GenerationRequest r;
    r.prompt = {decoder::PromptPart{job->before, {}}, decoder::PromptPart{{}, std::move(embedded.value()[i])},
                decoder::PromptPart{job->after, {}}};
    r.max_completion_tokens = job->max_new_tokens;
    r.sampling.temperature = job->options.temperature;
    r.sampling.top_p = job->options.top_p;
    if (job->options.temperature > 0) r.sampling.seed = job->options.seed + pending[i].window;
    auto id = generator_->submit(std::move(r));
    if (!id.ok()) {
      fail_job(job, id.error());
      continue;
    }
    job->windows[pending[i].window].request = id.value();
    owners_[id.value()] = Owner{job, pending[i].window};
  }
}

void FunAsrNanoModel::step(const std::vector<SpeechJob*>& jobs) {
  std::vector<NanoJob*> live;
  std::unordered_set<const NanoJob*> known;
  for (SpeechJob* j : jobs) {
    auto* job = static_cast<NanoJob*>(j);
    known.insert(job);
    if (!job->done()) live.push_back(job);
  }
  // Requests of jobs no longer handed in (destroyed without cancel) are dropped before anything reads them.
  for (auto it = owners_.begin(); it != owners_.end();) {
    if (!known.count(it->second.job)) {
      generator_->cancel(it->first);
      it = owners_.erase(it);
    } else {
      ++it;
    }
  }
  submit_windows(live);
  if (generator_->idle()) return;
  auto events = generator_->step();
  if (!events.ok()) {
    std::vector<NanoJob*> running;
    for (const auto& [id, owner] : owners_)
      if (std::find(running.begin(), running.end(), owner.job) == running.end()) running.push_back(owner.job);
    for (NanoJob* job : running) fail_job(job, events.error());
    return;
  }
  for (const auto& e : events.value()) {
    const auto it = owners_.find(e.request);
    if (it == owners_.end()) continue;
    const Owner owner = it->second;
    if (e.finish == decoder::FinishReason::kError) {
      fail_job(owner.job, e.error ? *e.error : make_error(ErrorCode::kInternal, "generation failed"));
      continue;
    }
    if (e.token >= 0 && e.finish != decoder::FinishReason::kStop) owner.job->add_token(owner.window, e.token);
    if (e.finish != decoder::FinishReason::kNone) {
      owners_.erase(it);
      finish_window(owner.job, owner.window);
    }
  }
}

void FunAsrNanoModel::cancel(SpeechJob* j) {
  auto* job = static_cast<NanoJob*>(j);
  if (job->done()) return;
  fail_job(job, make_error(ErrorCode::kUnavailable, "cancelled"));
}

}  // namespace

ModelInfo funasr_nano_model_info() {
  ModelInfo info;
  info.name = "funasr-nano";
  info.hf_architectures = {"FunASRNano"};
  info.model_types = {"funasr_nano"};
  info.tasks = {Task::kTranscribe};
  set_build_devices(info, /*cuda_graphs=*/true);  // the decoder's decode steps (DecoderLoadOptions::cuda_graphs)
  return info;
}

Result<std::unique_ptr<Model>> load_funasr_nano(const std::filesystem::path& dir, const nlohmann::json& config,
                                                const LoadOptions& options, const ModelInfo& info) {
  FATHOM_ASSIGN_OR_RETURN(auto parts, resolve_funasr_nano(dir, config));
  return assemble_audio_llm(std::move(parts), "FunASRNano", dir, config, options, info);
}

Result<std::unique_ptr<Model>> assemble_audio_llm(FunAsrNanoParts parts, const std::string& architecture,
                                                  const std::filesystem::path& dir, const nlohmann::json& config,
                                                  const LoadOptions& options, const ModelInfo& info) {
  FATHOM_ASSIGN_OR_RETURN(auto m, FunAsrNanoModel::load(std::move(parts), architecture, dir, config, options, info));
  return std::unique_ptr<Model>(std::move(m));
}

}  // namespace fathom::models::audiollm
