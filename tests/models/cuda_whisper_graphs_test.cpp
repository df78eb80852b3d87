// Whisper decode steps replayed from CUDA graphs (one per batch bucket) against the same steps run
// eagerly (LoadOptions::cuda_graphs off): logits of every row across changing batch sizes (so several
// buckets, padded rows included) and cache lengths, and whole transcriptions token for token (f32 also
// against transformers' reference). Skipped without a device.
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "models/whisper/whisper_model.h"
#include "support/files.h"
#include "support/paths.h"
#include "support/whisper_inputs.h"

namespace fathom::models::whisper {
namespace {

using nlohmann::json;
using fathom::testing::read_bytes;
using fathom::testing::read_json;

using Case = fathom::testing::WhisperCase;
using fathom::testing::whisper_case_name;

std::unique_ptr<WhisperModel> load(const Case& c, bool graphs) {
  const auto dir = fathom::testing::fixture("models/" + c.fixture);
  LoadOptions o;
  o.device = Device::cuda(0);
  o.dtype = c.dtype;
  o.cuda_graphs = graphs;
  auto m = WhisperModel::load(dir, read_json(dir / "config.json"), o, whisper_model_info(), 8);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(m).value() : nullptr;
}

std::vector<float> mel_window(int n_mels, int variant) {
  std::vector<float> mel(static_cast<std::size_t>(n_mels) * 3000);
  for (std::size_t i = 0; i < mel.size(); ++i)
    mel[i] = -0.6f + 0.5f * std::sin(0.001f * static_cast<float>(i) * static_cast<float>(variant + 1) + variant);
  return mel;
}

class CudaWhisperGraphs : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

// Both networks see the same calls: a prompt step per slot (eager path: several new tokens), then
// single-token steps over changing subsets of the slots (1, 3, 8, 2, 5, 7, 1 rows: buckets 1, 4, 8, 2, 8,
// 8, 1) so cache lengths differ between rows and grow at different rates.
TEST_P(CudaWhisperGraphs, ReplayEqualsEager) {
  auto graphs = load(GetParam(), true);
  auto eager = load(GetParam(), false);
  ASSERT_TRUE(graphs && eager);
  WhisperNetwork& g = graphs->network();
  WhisperNetwork& e = eager->network();
  EXPECT_TRUE(g.uses_graphs());
  EXPECT_FALSE(e.uses_graphs());
  const int n = 8, V = g.vocab_size();
  auto gs = g.acquire_slots(n), es = e.acquire_slots(n);
  ASSERT_TRUE(gs.ok() && es.ok());
  ASSERT_EQ(gs.value(), es.value());
  std::vector<std::vector<float>> mels;
  std::vector<std::span<const float>> windows;
  std::vector<std::vector<int>> lists;
  for (int i = 0; i < n; ++i) mels.push_back(mel_window(g.num_mel_bins(), i % 3));
  for (int i = 0; i < n; ++i) {
    windows.emplace_back(mels[static_cast<std::size_t>(i)]);
    lists.push_back({gs.value()[static_cast<std::size_t>(i)]});
  }
  ASSERT_TRUE(g.encode(windows, lists).ok());
  ASSERT_TRUE(e.encode(windows, lists).ok());
  const auto& gen = graphs->speech().generation_config();
  std::vector<DecodeRow> state(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& r = state[static_cast<std::size_t>(i)];
    r.slot = gs.value()[static_cast<std::size_t>(i)];
    r.tokens = {gen.decoder_start_token_id};
    for (int k = 0; k < i % 3; ++k) r.tokens.push_back(220 + 7 * i + k);  // prompts of 1..3 tokens
  }
  const bool f32 = GetParam().dtype == DType::kF32;
  const double tol = f32 ? 2e-3 : 6e-2;
  auto compare = [&](const std::vector<DecodeRow>& rows, const char* what) {
    auto a = g.decode(rows);
    ASSERT_TRUE(a.ok()) << a.error().message;
    const std::vector<float> ga(a->begin(), a->end());
    auto b = e.decode(rows);
    ASSERT_TRUE(b.ok()) << b.error().message;
    ASSERT_EQ(ga.size(), b->size());
    for (std::size_t r = 0; r < rows.size(); ++r) {
      double diff = 0, scale = 1;
      int am = 0, bm = 0;
      for (int v = 0; v < V; ++v) {
        const std::size_t i = r * static_cast<std::size_t>(V) + static_cast<std::size_t>(v);
        diff = std::max(diff, std::abs(static_cast<double>(ga[i]) - (*b)[i]));
        scale = std::max(scale, std::abs(static_cast<double>((*b)[i])));
        if (ga[i] > ga[r * V + am]) am = v;
        if ((*b)[i] > (*b)[r * V + bm]) bm = v;
      }
      EXPECT_LE(diff, tol * scale) << what << " row " << r << " (" << rows[r].tokens.size() << " tokens)";
      EXPECT_EQ(am, bm) << what << " row " << r;
    }
  };
  compare(state, "prompt");
  for (auto& r : state) r.cached = static_cast<int>(r.tokens.size());
  const std::vector<std::vector<int>> subsets = {{0}, {1, 4, 6}, {0, 1, 2, 3, 4, 5, 6, 7}, {7, 2},
                                                 {0, 2, 3, 5, 6}, {1, 2, 3, 4, 5, 6, 7}, {3}};
  int step = 0;
  std::set<int> buckets;
  for (const auto& subset : subsets) {
    std::vector<DecodeRow> rows;
    for (int i : subset) {
      auto& r = state[static_cast<std::size_t>(i)];
      r.cached = static_cast<int>(r.tokens.size());
      r.tokens.push_back(300 + 11 * step + i);
      rows.push_back(r);
    }
    int b = 1;
    while (b < static_cast<int>(rows.size())) b *= 2;
    buckets.insert(b);
    compare(rows, ("step " + std::to_string(step)).c_str());
    ++step;
  }
  EXPECT_EQ(g.graph_count(), buckets.size()) << "one graph per bucket used";
  EXPECT_EQ(e.graph_count(), 0u);
  g.release_slots(gs.value());
  e.release_slots(es.value());
}

// Whole transcriptions (prompt, greedy generation with and without timestamps, language detection) with
// graphs equal the eager ones; in f32 both equal transformers.
TEST_P(CudaWhisperGraphs, TranscriptionsMatchEager) {
  auto graphs = load(GetParam(), true);
  auto eager = load(GetParam(), false);
  ASSERT_TRUE(graphs && eager);
  const auto ref = read_json(fathom::testing::fixture("models/" + GetParam().fixture + ".reference.json"));
  const int max_new = ref["max_new_tokens"].get<int>();
  const auto mel = mel_window(graphs->network().num_mel_bins(), 1);
  int same = 0, total = 0;
  for (bool timestamps : {false, true})
    for (const char* language : {"en", ""}) {
      SpeechOptions o;
      o.language = language;
      o.timestamps = timestamps;
      o.max_new_tokens = max_new;
      auto a = graphs->speech().transcribe(mel, 3000, 30.0, o);
      auto b = eager->speech().transcribe(mel, 3000, 30.0, o);
      ASSERT_TRUE(a.ok() && b.ok());
      ++total;
      same += a->tokens == b->tokens ? 1 : 0;
      EXPECT_EQ(a->tokens, b->tokens) << "timestamps " << timestamps << " language '" << language << "'";
      EXPECT_EQ(a->language, b->language);
    }
  std::cout << "[cuda whisper graphs] " << GetParam().fixture << " " << dtype_name(GetParam().dtype) << ": " << same
            << "/" << total << " transcriptions equal with graphs, " << graphs->network().graph_count()
            << " graphs\n";
  EXPECT_GT(graphs->network().graph_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaWhisperGraphs,
                         ::testing::Values(Case{"whisper-tiny-random-f32", DType::kF32},
                                           Case{"whisper-tiny-random-f32", DType::kF16},
                                           Case{"whisper-v3-random-f16", DType::kF32},
                                           Case{"whisper-v3-random-f16", DType::kF16}),
                         whisper_case_name);

}  // namespace
}  // namespace fathom::models::whisper
#endif
