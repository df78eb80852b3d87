#include "ctc_model.h"

#include <cmath>
#include <fstream>

#include "formats/fbank/kaldi_fbank.h"
#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "formats/tokenizer/tokenizer.h"
#include "layers/linear.h"
#include "models/weights.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "runtime/allocator.h"
#include "runtime/workspace.h"

namespace funasr_ctc {
namespace {

using fathom::DType;
using fathom::Error;
using fathom::ErrorCode;
using fathom::make_error;
using fathom::Result;
using fathom::Shape;
using fathom::Status;
using fathom::TensorView;
using fathom::formats::apply_lfr;
using fathom::formats::Fbank;
using fathom::formats::FbankOptions;
using namespace fathom::models;

struct CtcConfig {
  FbankOptions fbank;
  int lfr_m = 7, lfr_n = 6;
  int input_size = 560, d_model = 0, heads = 0, linear_units = 0, blocks = 0, kernel = 0;
  float eps = 1e-5f;
  int vocab = 0, blank = 0;
};

Result<CtcConfig> parse_config(const nlohmann::json& j, const std::filesystem::path& file) {
  CtcConfig c;
  auto bad = [&](const std::string& what) { return make_error(ErrorCode::kLoadFailed, file.string() + ": " + what); };
  if (!j.contains("frontend") || !j["frontend"].is_object()) return bad("missing object 'frontend'");
  if (!j.contains("encoder") || !j["encoder"].is_object()) return bad("missing object 'encoder'");
  const auto& f = j["frontend"];
  const auto& e = j["encoder"];
  auto num = [&](const nlohmann::json& o, const char* key, double& out) -> Status {
    FATHOM_ASSIGN_OR_RETURN(auto v, fathom::formats::json_number(o, key, file));
    if (v) out = *v;
    return Status::Ok();
  };
  FATHOM_ASSIGN_OR_RETURN(c.fbank.sample_rate, fathom::formats::json_positive_int(f, "sample_rate", file));
  FATHOM_ASSIGN_OR_RETURN(c.fbank.num_mel_bins, fathom::formats::json_positive_int(f, "num_mel_bins", file));
  FATHOM_TRY(num(f, "frame_length_ms", c.fbank.frame_length_ms));
  FATHOM_TRY(num(f, "frame_shift_ms", c.fbank.frame_shift_ms));
  FATHOM_TRY(num(f, "preemphasis", c.fbank.preemphasis));
  FATHOM_TRY(num(f, "low_freq", c.fbank.low_freq));
  FATHOM_TRY(num(f, "high_freq", c.fbank.high_freq));
  FATHOM_TRY(num(f, "input_scale", c.fbank.input_scale));
  FATHOM_ASSIGN_OR_RETURN(auto window, fathom::formats::json_string(f, "window", file));
  if (window) c.fbank.window = *window;
  FATHOM_ASSIGN_OR_RETURN(auto dc, fathom::formats::json_bool(f, "remove_dc_offset", file));
  if (dc) c.fbank.remove_dc_offset = *dc;
  double dither = 0;
  FATHOM_TRY(num(f, "dither", dither));
  if (dither != 0) return bad("frontend.dither must be 0 (inference features are deterministic)");
  if (c.fbank.sample_rate != 16000) return bad("frontend.sample_rate must be 16000 (fathom decodes audio to 16 kHz)");
  FATHOM_ASSIGN_OR_RETURN(c.lfr_m, fathom::formats::json_positive_int(f, "lfr_m", file));
  FATHOM_ASSIGN_OR_RETURN(c.lfr_n, fathom::formats::json_positive_int(f, "lfr_n", file));
  FATHOM_ASSIGN_OR_RETURN(auto cmvn, fathom::formats::json_string(f, "cmvn", file));
  if (cmvn && *cmvn != "tensors") return bad("frontend.cmvn must be \"tensors\" (frontend.cmvn_shift / cmvn_scale)");

  FATHOM_ASSIGN_OR_RETURN(c.input_size, fathom::formats::json_positive_int(e, "input_size", file));
  FATHOM_ASSIGN_OR_RETURN(c.d_model, fathom::formats::json_positive_int(e, "d_model", file));
  FATHOM_ASSIGN_OR_RETURN(c.heads, fathom::formats::json_positive_int(e, "attention_heads", file));
  FATHOM_ASSIGN_OR_RETURN(c.linear_units, fathom::formats::json_positive_int(e, "linear_units", file));
  FATHOM_ASSIGN_OR_RETURN(c.blocks, fathom::formats::json_positive_int(e, "num_blocks", file));
  FATHOM_ASSIGN_OR_RETURN(c.kernel, fathom::formats::json_positive_int(e, "kernel_size", file));
  double eps = c.eps;
  FATHOM_TRY(num(e, "layer_norm_eps", eps));
  c.eps = static_cast<float>(eps);
  FATHOM_ASSIGN_OR_RETURN(c.vocab, fathom::formats::json_positive_int(j, "vocab_size", file));
  FATHOM_ASSIGN_OR_RETURN(auto blank, fathom::formats::json_int(j, "blank_id", file));
  c.blank = blank ? static_cast<int>(*blank) : 0;
  if (c.input_size != c.lfr_m * c.fbank.num_mel_bins)
    return bad("encoder.input_size " + std::to_string(c.input_size) + " must equal lfr_m * num_mel_bins = " +
               std::to_string(c.lfr_m * c.fbank.num_mel_bins));
  if (c.d_model % c.heads != 0 || c.d_model % 2 != 0)
    return bad("encoder.d_model must be even and divisible by attention_heads");
  if (c.kernel % 2 == 0) return bad("encoder.kernel_size must be odd");
  if (c.blank < 0 || c.blank >= c.vocab) return bad("blank_id must be in [0, vocab_size)");
  return c;
}

Result<std::vector<std::string>> read_tokens(const std::filesystem::path& file, int vocab) {
  FATHOM_ASSIGN_OR_RETURN(auto j, fathom::formats::read_json_file(file));
  if (!j.is_array()) return make_error(ErrorCode::kLoadFailed, file.string() + ": expected a JSON list of token strings");
  std::vector<std::string> out;
  for (const auto& t : j) {
    if (!t.is_string()) return make_error(ErrorCode::kLoadFailed, file.string() + ": every token must be a string");
    out.push_back(t.get<std::string>());
  }
  if (static_cast<int>(out.size()) != vocab)
    return make_error(ErrorCode::kLoadFailed, file.string() + ": " + std::to_string(out.size()) +
                                                  " tokens, but config.json vocab_size is " + std::to_string(vocab));
  return out;
}

struct Block {
  fathom::layers::LayerNorm norm1, norm2;
  fathom::layers::Linear qkv, out, w1, w2;
  TensorView fsmn;  // [d, 1, kernel]
};

TensorView view(std::vector<float>& v, int64_t rows, int64_t cols) {
  return TensorView(v.data(), DType::kF32, Shape{rows, cols});
}

class CtcJob final : public SpeechJob {
 public:
  CtcJob(std::vector<float> samples, double duration) : samples_(std::move(samples)), duration_(duration) {}
  bool done() const override { return done_; }
  std::string text_so_far() const override { return done_ && result_.ok() ? result_.value().text : std::string(); }
  Result<Transcription> result() const override {
    if (!done_) return make_error(ErrorCode::kUnavailable, "transcription is not finished");
    return result_;
  }
  std::vector<float> samples_;
  double duration_;
  bool done_ = false;
  Result<Transcription> result_ = Transcription{};
};

class CtcModel final : public Model, public SpeechToText {
 public:
  CtcModel(ModelInfo info, std::string arch) : info_(std::move(info)), arch_(std::move(arch)), account_(arch_) {}

  Status init(const std::filesystem::path& dir, const nlohmann::json& config) {
    FATHOM_ASSIGN_OR_RETURN(cfg_, parse_config(config, dir / "config.json"));
    FATHOM_ASSIGN_OR_RETURN(auto fb, Fbank::create(cfg_.fbank));
    fbank_ = std::make_unique<Fbank>(std::move(fb));
    FATHOM_ASSIGN_OR_RETURN(tokens_, read_tokens(dir / "tokens.json", cfg_.vocab));
    FATHOM_ASSIGN_OR_RETURN(tokenizer_, fathom::formats::Tokenizer::load(dir / "tokenizer.json"));
    FATHOM_ASSIGN_OR_RETURN(auto ckpt, fathom::formats::Checkpoint::open(dir));
    weights_ = std::make_unique<WeightStore>(fathom::cpu_allocator(), &account_, DType::kF32);
    const int64_t d = cfg_.d_model, in = cfg_.input_size;
    FATHOM_ASSIGN_OR_RETURN(cmvn_shift_, weights_->load(ckpt, "frontend.cmvn_shift", Shape{in}));
    FATHOM_ASSIGN_OR_RETURN(cmvn_scale_, weights_->load(ckpt, "frontend.cmvn_scale", Shape{in}));
    FATHOM_ASSIGN_OR_RETURN(in_proj_, linear(ckpt, "encoder.in_proj", d, in));
    for (int i = 0; i < cfg_.blocks; ++i) {
      const std::string p = "encoder.layers." + std::to_string(i) + ".";
      Block b;
      FATHOM_ASSIGN_OR_RETURN(b.norm1, norm(ckpt, p + "norm1"));
      FATHOM_ASSIGN_OR_RETURN(b.norm2, norm(ckpt, p + "norm2"));
      FATHOM_ASSIGN_OR_RETURN(b.qkv, linear(ckpt, p + "self_attn.linear_q_k_v", 3 * d, d));
      FATHOM_ASSIGN_OR_RETURN(b.out, linear(ckpt, p + "self_attn.linear_out", d, d));
      FATHOM_ASSIGN_OR_RETURN(b.fsmn, weights_->load(ckpt, p + "self_attn.fsmn_block.weight", Shape{d, 1, cfg_.kernel}));
      FATHOM_ASSIGN_OR_RETURN(b.w1, linear(ckpt, p + "feed_forward.w_1", cfg_.linear_units, d));
      FATHOM_ASSIGN_OR_RETURN(b.w2, linear(ckpt, p + "feed_forward.w_2", d, cfg_.linear_units));
      blocks_.push_back(b);
    }
    FATHOM_ASSIGN_OR_RETURN(after_norm_, norm(ckpt, "encoder.after_norm"));
    FATHOM_ASSIGN_OR_RETURN(ctc_lo_, linear(ckpt, "ctc.ctc_lo", cfg_.vocab, d));
    workspace_ = std::make_unique<fathom::Workspace>(fathom::cpu_allocator(), &account_);
    ctx_.device = fathom::Device::cpu();
    ctx_.allocator = &fathom::cpu_allocator();
    ctx_.account = &account_;
    ctx_.workspace = workspace_.get();
    return Status::Ok();
  }

  // Model
  const ModelInfo& info() const override { return info_; }
  std::string architecture() const override { return arch_; }
  DType dtype() const override { return DType::kF32; }
  fathom::Device device() const override { return fathom::Device::cpu(); }
  std::size_t memory_bytes() const override { return account_.in_use(); }
  SpeechToText* as_speech_to_text() override { return this; }

  // SpeechToText
  const fathom::formats::Tokenizer& tokenizer() const override { return *tokenizer_; }
  std::vector<std::string> languages() const override { return {}; }
  // Features are computed in step(), batched with the other jobs of the step.
  Result<std::unique_ptr<SpeechJob>> start(std::vector<float> samples, const SpeechOptions& options) override {
    if (options.translate)
      return make_error(ErrorCode::kUnsupported, arch_ + " only transcribes; it cannot translate", "model");
    if (!options.language.empty() && options.language != "en")
      return make_error(ErrorCode::kInvalidArgument, arch_ + " has no language selection; got language '" +
                                                         options.language + "'", "language");
    const double duration = static_cast<double>(samples.size()) / cfg_.fbank.sample_rate;
    return std::unique_ptr<SpeechJob>(std::make_unique<CtcJob>(std::move(samples), duration));
  }
  void step(const std::vector<SpeechJob*>& jobs) override {
    std::vector<CtcJob*> pending;
    for (auto* j : jobs) {
      auto* job = dynamic_cast<CtcJob*>(j);
      if (job && !job->done_) pending.push_back(job);
    }
    if (pending.empty()) return;
    std::vector<const std::vector<float>*> inputs;
    for (auto* job : pending) inputs.push_back(&job->samples_);
    std::vector<CtcOutputs> outs(pending.size());
    Status s = Status::Ok();
    try {
      s = forward(inputs, outs);
    } catch (const std::exception& e) {
      s = make_error(ErrorCode::kInternal, arch_ + ": " + e.what());
    }
    for (std::size_t i = 0; i < pending.size(); ++i) {
      auto* job = pending[i];
      job->done_ = true;
      if (!s.ok()) {
        job->result_ = s.error();
        continue;
      }
      Transcription t;
      t.text = outs[i].text;
      t.duration = job->duration_;
      t.tokens = outs[i].tokens;
      SpeechSegment seg;
      seg.start = 0;
      seg.end = job->duration_;
      seg.text = t.text;
      seg.tokens = t.tokens;
      t.segments.push_back(std::move(seg));
      job->result_ = std::move(t);
      std::vector<float>().swap(job->samples_);
    }
  }

  // Runs the whole pipeline for several utterances in one packed batch.
  Status forward(const std::vector<const std::vector<float>*>& inputs, std::vector<CtcOutputs>& outs);

 private:
  Result<fathom::layers::Linear> linear(const fathom::formats::Checkpoint& ckpt, const std::string& name, int64_t out, int64_t in) {
    fathom::layers::Linear l;
    FATHOM_ASSIGN_OR_RETURN(l.weight, weights_->load(ckpt, name + ".weight", Shape{out, in}));
    FATHOM_ASSIGN_OR_RETURN(l.bias, weights_->load(ckpt, name + ".bias", Shape{out}));
    return l;
  }
  Result<fathom::layers::LayerNorm> norm(const fathom::formats::Checkpoint& ckpt, const std::string& name) {
    fathom::layers::LayerNorm n;
    n.eps = cfg_.eps;
    FATHOM_ASSIGN_OR_RETURN(n.gamma, weights_->load(ckpt, name + ".weight", Shape{cfg_.d_model}));
    FATHOM_ASSIGN_OR_RETURN(n.beta, weights_->load(ckpt, name + ".bias", Shape{cfg_.d_model}));
    return n;
  }

  ModelInfo info_;
  std::string arch_;
  fathom::MemoryAccount account_;
  CtcConfig cfg_;
  std::unique_ptr<Fbank> fbank_;
  std::vector<std::string> tokens_;
  std::shared_ptr<const fathom::formats::Tokenizer> tokenizer_;
  std::unique_ptr<WeightStore> weights_;
  std::unique_ptr<fathom::Workspace> workspace_;
  fathom::ExecContext ctx_;
  TensorView cmvn_shift_, cmvn_scale_;
  fathom::layers::Linear in_proj_, ctc_lo_;
  std::vector<Block> blocks_;
  fathom::layers::LayerNorm after_norm_;
};

Status CtcModel::forward(const std::vector<const std::vector<float>*>& inputs, std::vector<CtcOutputs>& outs) {
  const int d = cfg_.d_model, in = cfg_.input_size, V = cfg_.vocab, K = cfg_.kernel;
  const int bins = cfg_.fbank.num_mel_bins;
  // Front end per utterance, packed into one [total, in] matrix.
  std::vector<int> lengths;
  std::vector<float> x0;
  for (std::size_t u = 0; u < inputs.size(); ++u) {
    CtcOutputs& o = outs[u];
    o.fbank = fbank_->compute(*inputs[u], &o.fbank_frames);
    o.lfr = apply_lfr(o.fbank, o.fbank_frames, bins, cfg_.lfr_m, cfg_.lfr_n, &o.lfr_frames);
    const float* shift = cmvn_shift_.ptr<float>();
    const float* scale = cmvn_scale_.ptr<float>();
    for (int t = 0; t < o.lfr_frames; ++t)
      for (int c = 0; c < in; ++c) {
        float& v = o.lfr[static_cast<std::size_t>(t) * in + c];
        v = (v + shift[c]) * scale[c];
      }
    x0.insert(x0.end(), o.lfr.begin(), o.lfr.end());
    lengths.push_back(o.lfr_frames);
  }
  auto batch = fathom::ops::VarlenBatch::from_lengths(lengths);
  const int64_t T = batch.total();
  if (T > 0) {
    std::vector<float> x(T * d), h(T * d), qkv(T * 3 * d), att(T * d), proj(T * d), ff(T * cfg_.linear_units);
    FATHOM_TRY(in_proj_.forward(ctx_, view(x0, T, in), view(x, T, d)));
    // x * sqrt(d) + sinusoidal position encoding (positions 1..len per utterance), FunASR's formula.
    const float sqrt_d = std::sqrt(static_cast<float>(d));
    const int half = d / 2;
    const float inc = std::log(10000.0f) / static_cast<float>(half - 1);
    for (int b = 0; b < batch.batch(); ++b)
      for (int t = batch.cu_seqlens[b]; t < batch.cu_seqlens[b + 1]; ++t) {
        const float pos = static_cast<float>(t - batch.cu_seqlens[b] + 1);
        float* row = x.data() + static_cast<std::size_t>(t) * d;
        for (int i = 0; i < half; ++i) {
          const float st = pos * std::exp(static_cast<float>(i) * -inc);
          row[i] = row[i] * sqrt_d + std::sin(st);
          row[half + i] = row[half + i] * sqrt_d + std::cos(st);
        }
      }
    const int hd = d / cfg_.heads;
    for (const Block& blk : blocks_) {
      FATHOM_TRY(blk.norm1.forward(ctx_, view(x, T, d), nullptr, view(h, T, d)));
      FATHOM_TRY(blk.qkv.forward(ctx_, view(h, T, d), view(qkv, T, 3 * d)));
      FATHOM_TRY(fathom::ops::attention_varlen(ctx_, view(qkv, T, 3 * d), batch, cfg_.heads, hd,
                                               1.0f / std::sqrt(static_cast<float>(hd)), view(att, T, d)));
      FATHOM_TRY(blk.out.forward(ctx_, view(att, T, d), view(proj, T, d)));
      // FSMN memory: v + depthwise conv of v over time within each utterance (zero padding).
      const float* w = blk.fsmn.ptr<float>();
      const int pad = (K - 1) / 2;
      for (int b = 0; b < batch.batch(); ++b) {
        const int s0 = batch.cu_seqlens[b], s1 = batch.cu_seqlens[b + 1];
        for (int t = s0; t < s1; ++t) {
          float* dst = x.data() + static_cast<std::size_t>(t) * d;
          const float* vt = qkv.data() + static_cast<std::size_t>(t) * 3 * d + 2 * d;
          const float* pr = proj.data() + static_cast<std::size_t>(t) * d;
          for (int c = 0; c < d; ++c) {
            float m = vt[c];
            for (int k = 0; k < K; ++k) {
              const int src = t + k - pad;
              if (src < s0 || src >= s1) continue;
              m += w[c * K + k] * qkv[static_cast<std::size_t>(src) * 3 * d + 2 * d + c];
            }
            dst[c] += pr[c] + m;
          }
        }
      }
      FATHOM_TRY(blk.norm2.forward(ctx_, view(x, T, d), nullptr, view(h, T, d)));
      FATHOM_TRY(blk.w1.forward(ctx_, view(h, T, d), view(ff, T, cfg_.linear_units)));
      for (float& v : ff) v = v > 0.0f ? v : 0.0f;
      FATHOM_TRY(blk.w2.forward(ctx_, view(ff, T, cfg_.linear_units), view(proj, T, d)));
      for (int64_t i = 0; i < T * d; ++i) x[i] += proj[i];
    }
    FATHOM_TRY(after_norm_.forward(ctx_, view(x, T, d), nullptr, view(h, T, d)));
    std::vector<float> logits(T * V);
    FATHOM_TRY(ctc_lo_.forward(ctx_, view(h, T, d), view(logits, T, V)));
    for (std::size_t u = 0; u < inputs.size(); ++u) {
      const int s0 = batch.cu_seqlens[u], s1 = batch.cu_seqlens[u + 1];
      CtcOutputs& o = outs[u];
      o.encoder.assign(h.begin() + static_cast<std::ptrdiff_t>(s0) * d, h.begin() + static_cast<std::ptrdiff_t>(s1) * d);
      o.logits.assign(logits.begin() + static_cast<std::ptrdiff_t>(s0) * V, logits.begin() + static_cast<std::ptrdiff_t>(s1) * V);
    }
  }
  // Greedy CTC per utterance.
  for (auto& o : outs) {
    const int frames = static_cast<int>(o.logits.size() / V);
    int prev = -1;
    for (int t = 0; t < frames; ++t) {
      const float* row = o.logits.data() + static_cast<std::size_t>(t) * V;
      int best = 0;
      for (int v = 1; v < V; ++v)
        if (row[v] > row[best]) best = v;
      o.argmax.push_back(best);
      if (best != prev && best != cfg_.blank) o.tokens.push_back(best);
      prev = best;
    }
    std::string text;
    for (int id : o.tokens) text += tokens_[id];
    std::string spaced;
    const std::string meta = "\xE2\x96\x81";  // U+2581
    for (std::size_t i = 0; i < text.size();) {
      if (text.compare(i, meta.size(), meta) == 0) {
        spaced += ' ';
        i += meta.size();
      } else {
        spaced += text[i++];
      }
    }
    const auto first = spaced.find_first_not_of(" \t\n");
    const auto last = spaced.find_last_not_of(" \t\n");
    o.text = first == std::string::npos ? std::string() : spaced.substr(first, last - first + 1);
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Model>> load_model(const std::filesystem::path& dir, const nlohmann::json& config,
                                          const LoadOptions& options, const ModelInfo& info) {
  if (options.dtype && *options.dtype != DType::kF32)
    return make_error(ErrorCode::kUnsupported, dir.string() + ": " + std::string(kArchitecture) +
                                                   " computes in float32 only, not " + std::string(fathom::dtype_name(*options.dtype)));
  auto model = std::make_unique<CtcModel>(info, kArchitecture);
  FATHOM_TRY(model->init(dir, config));
  return std::unique_ptr<Model>(std::move(model));
}

Status run_diagnostics(Model* model, const std::vector<float>& samples, CtcOutputs* out) {
  auto* m = dynamic_cast<CtcModel*>(model);
  if (!m || !out) return make_error(ErrorCode::kInvalidArgument, "run_diagnostics: not a FunASRCTCModel");
  std::vector<CtcOutputs> outs(1);
  FATHOM_TRY(m->forward({&samples}, outs));
  *out = std::move(outs[0]);
  return Status::Ok();
}

}  // namespace funasr_ctc
