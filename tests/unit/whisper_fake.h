#pragma once
// A scripted Whisper backend for decoding tests: a tiny vocabulary and logits computed by a function of
// the token history. It checks the DecodeRow cache protocol on every call.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "models/whisper/backend.h"
#include "models/whisper/config.h"

namespace fathom::models::whisper::testing {

// Vocabulary: text 0..9, eos 10, sot 11, <|en|> 12, <|fr|> 13, translate 14, transcribe 15, startoflm 16,
// startofprev 17, nospeech 18, notimestamps 19, timestamps 20..39 (<|0.00|> .. <|0.38|>).
constexpr int kVocab = 40;
constexpr int kEos = 10, kSot = 11, kEn = 12, kFr = 13, kTranslate = 14, kTranscribe = 15, kPrev = 17,
              kNoSpeech = 18, kNoTs = 19, kTs = 20;

inline GenerationConfig fake_generation_config() {
  GenerationConfig g;
  g.decoder_start_token_id = kSot;
  g.eos_token_id = g.pad_token_id = kEos;
  g.no_timestamps_token_id = kNoTs;
  g.prev_sot_token_id = kPrev;
  g.suppress_tokens = {kSot, kTranslate, kTranscribe, 16, kPrev, kNoSpeech};
  g.begin_suppress_tokens = {0, kEos};
  g.max_initial_timestamp_index = 5;
  g.is_multilingual = true;
  g.lang_to_id = {{"en", kEn}, {"fr", kFr}};
  g.task_to_id = {{"transcribe", kTranscribe}, {"translate", kTranslate}};
  return g;
}

// Logits = function(history, window index of the slot); default 0 everywhere.
using LogitsFn = std::function<std::vector<float>(const std::vector<int32_t>& history, int window)>;

class FakeBackend : public WhisperBackend {
 public:
  explicit FakeBackend(LogitsFn fn, int slots = 16, int max_positions = 64)
      : fn_(std::move(fn)), max_positions_(max_positions) {
    for (int i = 0; i < slots; ++i) free_.insert(i);
  }
  int vocab_size() const override { return kVocab; }
  int num_mel_bins() const override { return 2; }
  int max_target_positions() const override { return max_positions_; }
  int free_slots() const override { return static_cast<int>(free_.size()); }
  Result<std::vector<int>> acquire_slots(int n) override {
    if (static_cast<int>(free_.size()) < n) return make_error(ErrorCode::kOverloaded, "no slots");
    std::vector<int> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(*free_.begin());
      free_.erase(free_.begin());
    }
    return out;
  }
  void release_slots(const std::vector<int>& slots) override {
    for (int s : slots) {
      EXPECT_FALSE(free_.count(s)) << "slot released twice: " << s;
      free_.insert(s);
    }
  }
  Status encode(const std::vector<std::span<const float>>& windows,
                const std::vector<std::vector<int>>& slots) override {
    ++encode_calls;
    encode_batch_sizes.push_back(static_cast<int>(windows.size()));
    for (std::size_t i = 0; i < windows.size(); ++i) {
      EXPECT_EQ(windows[i].size(), 2u * 3000u);
      window_first_values.push_back(windows[i][0]);
      for (int s : slots[i]) {
        window_of_[s] = encoded_windows;
        cache_[s].clear();
      }
      ++encoded_windows;
    }
    return Status::Ok();
  }
  Result<std::span<float>> decode(const std::vector<DecodeRow>& rows) override {
    ++decode_calls;
    decode_batch_sizes.push_back(static_cast<int>(rows.size()));
    auto before = cache_;
    auto window_before = window_of_;
    std::vector<float> out;
    for (const auto& r : rows) {
      if (r.source_slot >= 0 && r.source_slot != r.slot) {
        cache_[r.slot] = before[r.source_slot];
        window_of_[r.slot] = window_before[r.source_slot];
      }
      auto& c = cache_[r.slot];
      EXPECT_LE(r.cached, static_cast<int>(c.size())) << "row claims more cached tokens than the slot holds";
      EXPECT_LT(r.cached, static_cast<int>(r.tokens.size())) << "row feeds no new token";
      for (int i = 0; i < r.cached && i < static_cast<int>(c.size()); ++i)
        EXPECT_EQ(c[i], r.tokens[i]) << "cache prefix mismatch at " << i;
      EXPECT_LE(static_cast<int>(r.tokens.size()), max_positions_);
      c = r.tokens;
      fed_tokens += static_cast<int>(r.tokens.size()) - r.cached;
      auto l = fn_(r.tokens, window_of_[r.slot]);
      l.resize(kVocab, 0.0f);
      out.insert(out.end(), l.begin(), l.end());
      histories.push_back(r.tokens);
    }
    logits_ = std::move(out);
    return std::span<float>(logits_);
  }

  int encode_calls = 0, decode_calls = 0, encoded_windows = 0, fed_tokens = 0;
  std::vector<int> encode_batch_sizes, decode_batch_sizes;
  std::vector<float> window_first_values;
  std::vector<std::vector<int32_t>> histories;

 private:
  LogitsFn fn_;
  int max_positions_;
  std::set<int> free_;
  std::map<int, std::vector<int32_t>> cache_;
  std::map<int, int> window_of_;
  std::vector<float> logits_;  // the last decode()'s logits (valid until the next call, as the contract says)
};

// Logits with `hot` tokens at the given values and everything else at `base`.
inline std::vector<float> logits_with(std::initializer_list<std::pair<int, float>> hot, float base = 0.0f) {
  std::vector<float> l(kVocab, base);
  for (auto [t, v] : hot) l[t] = v;
  return l;
}

}  // namespace fathom::models::whisper::testing
