#include "models/whisper/decoding.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace fathom::models::whisper {
namespace {

constexpr double kNegInfD = -std::numeric_limits<double>::infinity();

}  // namespace

std::vector<std::pair<int, double>> subset_log_softmax(std::span<const float> logits, const std::vector<int>& tokens) {
  std::vector<float> sub;
  std::vector<int> ids;
  for (int t : tokens) {
    if (t < 0 || t >= static_cast<int>(logits.size())) continue;
    sub.push_back(logits[t]);
    ids.push_back(t);
  }
  auto lp = log_softmax(sub);
  std::vector<std::pair<int, double>> out;
  for (std::size_t i = 0; i < ids.size(); ++i) out.emplace_back(ids[i], lp[i]);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

WindowDecoder::WindowDecoder(const GenerationConfig& gen, int vocab_size, int max_positions, WindowOptions options,
                             std::vector<int> slots)
    : gen_(gen), vocab_(vocab_size), max_positions_(max_positions), opt_(std::move(options)), slots_(std::move(slots)),
      rng_(opt_.seed) {
  if (opt_.temperature > 0) opt_.beams = 1;
  opt_.beams = std::max(1, std::min<int>(opt_.beams, static_cast<int>(slots_.size())));
  rules_ = make_logits_rules(gen_, vocab_, opt_.timestamps);
  build_prompt();
  Beam b;
  b.slot = slots_.at(0);
  beams_.push_back(b);
  const bool detect = gen_.is_multilingual && !opt_.language;
  // With a text prompt, the language is detected from <|startoftranscript|> alone (as transformers does).
  phase_ = (detect && sot_index() > 0) ? Phase::kDetect : Phase::kSot;
  if (opt_.language) {
    result_.language = *opt_.language;
    result_.language_prob = 1.0;
  }
}

void WindowDecoder::build_prompt() {
  prompt_.clear();
  if (!opt_.previous.empty() && gen_.prev_sot_token_id) {
    // Whisper keeps the last n_ctx/2 - 1 prompt tokens.
    std::size_t keep = static_cast<std::size_t>(std::max(0, max_positions_ / 2 - 1));
    std::size_t start = opt_.previous.size() > keep ? opt_.previous.size() - keep : 0;
    prompt_.push_back(*gen_.prev_sot_token_id);
    prompt_.insert(prompt_.end(), opt_.previous.begin() + static_cast<std::ptrdiff_t>(start), opt_.previous.end());
  }
  prompt_.push_back(gen_.decoder_start_token_id);
  if (gen_.is_multilingual) {
    if (opt_.language) {
      if (auto id = gen_.language_token(*opt_.language)) prompt_.push_back(*id);
    }
    auto task = gen_.task_to_id.find(opt_.translate ? "translate" : "transcribe");
    if (task != gen_.task_to_id.end()) prompt_.push_back(task->second);
  }
  if (!opt_.timestamps) prompt_.push_back(gen_.no_timestamps_token_id);
}

int WindowDecoder::sot_index() const {
  for (std::size_t i = 0; i < prompt_.size(); ++i)
    if (prompt_[i] == gen_.decoder_start_token_id) return static_cast<int>(i);
  return 0;
}

std::span<const int32_t> WindowDecoder::generated(const Beam& b) const {
  return std::span<const int32_t>(b.tokens).subspan(prompt_.size());
}

std::vector<int32_t> WindowDecoder::partial_tokens() const {
  if (done_) return result_.tokens;
  if (phase_ != Phase::kGenerate || beams_.empty()) return {};
  auto g = generated(beams_[0]);
  return std::vector<int32_t>(g.begin(), g.end());
}

std::span<const int32_t> WindowDecoder::partial_view() const {
  if (done_) return result_.tokens;
  if (phase_ != Phase::kGenerate || beams_.empty()) return {};
  return generated(beams_[0]);
}

std::vector<DecodeRow> WindowDecoder::rows() const {
  std::vector<DecodeRow> out;
  if (done_) return out;
  switch (phase_) {
    case Phase::kDetect:
      out.push_back({slots_[0], -1, 0, {gen_.decoder_start_token_id}});
      break;
    case Phase::kSot:
      out.push_back({slots_[0], -1, 0, std::vector<int32_t>(prompt_.begin(), prompt_.begin() + sot_index() + 1)});
      break;
    case Phase::kPrompt:
      out.push_back({slots_[0], -1, sot_index() + 1, prompt_});
      break;
    case Phase::kGenerate:
      for (const auto& b : beams_) out.push_back({b.slot, b.source_slot, b.cached, b.tokens});
      break;
  }
  return out;
}

std::size_t WindowDecoder::row_count() const {
  if (done_) return 0;
  return phase_ == Phase::kGenerate ? beams_.size() : 1;
}

Status WindowDecoder::advance(std::span<float> logits) {
  if (done_) return make_error(ErrorCode::kInternal, "whisper decoder: advance() after completion");
  const std::size_t n_rows = row_count();
  if (logits.size() != n_rows * static_cast<std::size_t>(vocab_))
    return make_error(ErrorCode::kInternal, "whisper decoder: expected " + std::to_string(n_rows) + " x " +
                                                std::to_string(vocab_) + " logits, got " + std::to_string(logits.size()));
  switch (phase_) {
    case Phase::kDetect:
    case Phase::kSot: {
      if (gen_.is_multilingual && !opt_.language) {
        std::vector<int> langs;
        for (const auto& [code, id] : gen_.lang_to_id) langs.push_back(id);
        std::sort(langs.begin(), langs.end());
        auto lp = subset_log_softmax(logits, langs);
        if (lp.empty()) return make_error(ErrorCode::kInternal, "whisper decoder: no language token in vocabulary");
        result_.language_logprobs = lp;
        result_.language = gen_.language_code(lp[0].first);
        result_.language_prob = std::exp(lp[0].second);
        opt_.language = result_.language;
        build_prompt();
      }
      if (phase_ == Phase::kDetect) {
        phase_ = Phase::kSot;
        return Status::Ok();
      }
      const int ns = gen_.no_speech_token_id();
      if (ns >= 0 && ns < vocab_) {
        const double lse = log_sum_exp(logits.first(static_cast<std::size_t>(vocab_)));
        result_.no_speech_prob = std::isfinite(lse) ? std::exp(static_cast<double>(logits[ns]) - lse) : 0.0;
      }
      beams_[0].tokens = prompt_;
      beams_[0].cached = sot_index() + 1;
      if (static_cast<int>(prompt_.size()) > sot_index() + 1) {
        phase_ = Phase::kPrompt;
        return Status::Ok();
      }
      phase_ = Phase::kGenerate;
      return opt_.beams > 1 ? step_beams(logits) : step_single(logits);
    }
    case Phase::kPrompt:
      phase_ = Phase::kGenerate;
      beams_[0].tokens = prompt_;
      beams_[0].cached = static_cast<int>(prompt_.size());
      return opt_.beams > 1 ? step_beams(logits) : step_single(logits);
    case Phase::kGenerate:
      for (auto& b : beams_) {
        b.cached = static_cast<int>(b.tokens.size());
        b.source_slot = -1;
      }
      return opt_.beams > 1 ? step_beams(logits) : step_single(logits);
  }
  return Status::Ok();
}

Status WindowDecoder::step_single(std::span<float> logits) {
  Beam& b = beams_[0];
  std::span<float> row = logits.first(static_cast<std::size_t>(vocab_));
  apply_logits_rules(rules_, generated(b), row);
  // Greedy needs only the first maximum and the chosen token's log-probability (logit - logsumexp).
  const RowStats stats = row_stats(row);
  int token = 0;
  if (opt_.temperature > 0) {
    // Temperature, then nucleus (top_p) filtering, then a draw from the seeded generator.
    std::vector<double> scaled(vocab_);
    double mx = kNegInfD;
    for (int i = 0; i < vocab_; ++i) {
      scaled[i] = static_cast<double>(row[i]) / opt_.temperature;
      mx = std::max(mx, scaled[i]);
    }
    std::vector<double> p(vocab_);
    double sum = 0;
    for (int i = 0; i < vocab_; ++i) sum += (p[i] = std::isfinite(scaled[i]) ? std::exp(scaled[i] - mx) : 0.0);
    for (auto& v : p) v /= sum;
    if (opt_.top_p < 1.0f) {
      std::vector<int> order(vocab_);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return p[a] > p[c]; });
      double acc = 0;
      std::size_t keep = 0;
      while (keep < order.size() && (keep == 0 || acc < opt_.top_p)) acc += p[order[keep++]];
      std::vector<double> q(vocab_, 0.0);
      for (std::size_t i = 0; i < keep; ++i) q[order[i]] = p[order[i]];
      p.swap(q);
    }
    std::discrete_distribution<int> dist(p.begin(), p.end());
    token = dist(rng_);
  } else {
    token = stats.argmax;
  }
  if (!std::isfinite(row[token])) token = stats.argmax;  // a draw can never pick a suppressed token
  b.score += std::isfinite(stats.logsumexp) ? static_cast<double>(row[token]) - stats.logsumexp : kNegInfD;
  if (token == gen_.eos_token_id) {
    finish_single(true);
    return Status::Ok();
  }
  b.tokens.push_back(token);
  const int limit = std::min<int>(opt_.max_new_tokens, max_positions_ - static_cast<int>(prompt_.size()));
  if (static_cast<int>(generated(b).size()) >= limit) finish_single(false);
  return Status::Ok();
}

void WindowDecoder::finish_single(bool eos) {
  const Beam& b = beams_[0];
  auto g = generated(b);
  result_.prompt = prompt_;
  result_.tokens.assign(g.begin(), g.end());
  result_.ended_with_eos = eos;
  result_.sum_logprob = b.score;
  result_.avg_logprob = b.score / static_cast<double>(result_.tokens.size() + 1);
  done_ = true;
}

Status WindowDecoder::step_beams(std::span<float> logits) {
  const int n = opt_.beams;
  struct Cand {
    double score;
    int beam;
    int token;
  };
  std::vector<Cand> cands;
  for (std::size_t bi = 0; bi < beams_.size(); ++bi) {
    std::span<float> row = logits.subspan(bi * static_cast<std::size_t>(vocab_), static_cast<std::size_t>(vocab_));
    apply_logits_rules(rules_, generated(beams_[bi]), row);
    auto lp = log_softmax(row);
    std::vector<int> idx(vocab_);
    std::iota(idx.begin(), idx.end(), 0);
    const int k = std::min(2 * n, vocab_);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int c) { return lp[a] > lp[c] || (lp[a] == lp[c] && a < c); });
    for (int i = 0; i < k; ++i)
      if (std::isfinite(lp[idx[i]])) cands.push_back({beams_[bi].score + lp[idx[i]], static_cast<int>(bi), idx[i]});
  }
  std::stable_sort(cands.begin(), cands.end(), [](const Cand& a, const Cand& b) { return a.score > b.score; });
  if (cands.size() > static_cast<std::size_t>(2 * n)) cands.resize(2 * n);

  const int gen_len = static_cast<int>(generated(beams_[0]).size()) + 1;  // length after this step
  std::vector<Beam> next;
  for (std::size_t rank = 0; rank < cands.size() && static_cast<int>(next.size()) < n; ++rank) {
    const Cand& c = cands[rank];
    const Beam& parent = beams_[c.beam];
    if (c.token == gen_.eos_token_id) {
      if (static_cast<int>(rank) >= n) continue;
      auto g = generated(parent);
      finished_.push_back({std::vector<int32_t>(g.begin(), g.end()), c.score, c.score / gen_len, true});
      continue;
    }
    Beam nb;
    nb.slot = slots_[next.size()];
    nb.source_slot = parent.slot;
    nb.cached = static_cast<int>(parent.tokens.size());
    nb.tokens = parent.tokens;
    nb.tokens.push_back(c.token);
    nb.score = c.score;
    next.push_back(std::move(nb));
  }
  // Keep the n best finished hypotheses.
  std::stable_sort(finished_.begin(), finished_.end(), [](const Finished& a, const Finished& b) { return a.normalized > b.normalized; });
  if (finished_.size() > static_cast<std::size_t>(n)) finished_.resize(n);
  beams_ = std::move(next);

  const int limit = std::min<int>(opt_.max_new_tokens, max_positions_ - static_cast<int>(prompt_.size()));
  bool stop = beams_.empty() || gen_len >= limit;
  if (!stop && static_cast<int>(finished_.size()) >= n) {
    // transformers' early_stopping=False heuristic: the best running beam can no longer win.
    double best_running = beams_[0].score / gen_len;
    stop = finished_.back().normalized >= best_running;
  }
  if (stop) {
    if (gen_len >= limit || finished_.empty()) {
      for (const auto& b : beams_) {
        auto g = generated(b);
        finished_.push_back({std::vector<int32_t>(g.begin(), g.end()), b.score, b.score / static_cast<double>(g.size()), false});
      }
    }
    finish_beams();
  }
  return Status::Ok();
}

void WindowDecoder::finish_beams() {
  const Finished* best = nullptr;
  for (const auto& f : finished_)
    if (!best || f.normalized > best->normalized) best = &f;
  result_.prompt = prompt_;
  if (best) {
    result_.tokens = best->tokens;
    result_.ended_with_eos = best->eos;
    result_.sum_logprob = best->sum_logprob;
    result_.avg_logprob = best->sum_logprob / static_cast<double>(best->tokens.size() + 1);
  }
  done_ = true;
}

}  // namespace fathom::models::whisper
