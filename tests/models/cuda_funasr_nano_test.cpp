// The FunASR-Nano model on CUDA (skipped without a device): samples -> transformers' greedy tokens for every
// reference case in f32 (decode steps replayed from CUDA graphs), batched jobs equal single jobs, graph replay
// equals eager, and f16 / bf16 follow the reference (first token equal; how far the rest agrees is printed).
#if FATHOM_WITH_CUDA  // CUDA-only test; CPU builds compile nothing here
#include <gtest/gtest.h>

#include <cstdio>

#include "backends/cuda/device.h"
#include "models/registry.h"
#include "support/decoder_fixture.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::models::audiollm {
namespace {

using fathom::testing::fixture;

struct Case {
  std::string key;
  std::vector<float> samples;
  SpeechOptions options;
  std::vector<int32_t> greedy;
};

std::vector<Case> cases(const std::string& name) {
  const auto ref = fathom::testing::read_json(fixture("models/" + name + ".reference.json"));
  std::vector<Case> out;
  for (const auto& [key, cs] : ref["generate"]["cases"].items()) {
    Case c;
    c.key = key;
    c.samples = fathom::testing::audiollm_clip_samples(ref["clips"][cs["clip"].get<std::string>()]);
    if (c.samples.empty()) continue;
    c.options = fathom::testing::audiollm_case_options(key, cs);
    c.greedy = cs["greedy_tokens"].get<std::vector<int32_t>>();
    out.push_back(std::move(c));
  }
  return out;
}

std::unique_ptr<Model> load(const std::string& name, DType dtype, bool graphs = true) {
  LoadOptions o;
  o.device = Device::cuda(0);
  o.dtype = dtype;
  o.cuda_graphs = graphs;
  auto m = Registry::global().load(fixture("models/" + name), o);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m.ok() ? std::move(m).value() : nullptr;
}

// Runs the cases together (one job each) and returns their tokens.
std::vector<std::vector<int32_t>> transcribe(SpeechToText& stt, const std::vector<Case>& cs) {
  std::vector<std::unique_ptr<SpeechJob>> jobs;
  std::vector<SpeechJob*> raw;
  for (const auto& c : cs) {
    auto j = stt.start(c.samples, c.options);
    EXPECT_TRUE(j.ok()) << c.key;
    if (!j.ok()) return {};
    raw.push_back(j.value().get());
    jobs.push_back(std::move(j).value());
  }
  for (int i = 0; i < 10000; ++i) {
    bool all = true;
    for (auto* j : raw) all = all && j->done();
    if (all) break;
    stt.step(raw);
  }
  std::vector<std::vector<int32_t>> out;
  for (auto& j : jobs) {
    auto r = j->result();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    out.push_back(r.ok() ? r->tokens : std::vector<int32_t>{});
  }
  return out;
}

class CudaFunAsrNano : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(CudaFunAsrNano, F32MatchesTransformersAloneAndBatched) {
  auto m = load(GetParam(), DType::kF32);
  ASSERT_TRUE(m);
  const auto cs = cases(GetParam());
  for (const auto& c : cs) EXPECT_EQ(transcribe(*m->as_speech_to_text(), {c}).at(0), c.greedy) << c.key;
  const auto together = transcribe(*m->as_speech_to_text(), cs);
  ASSERT_EQ(together.size(), cs.size());
  for (std::size_t i = 0; i < cs.size(); ++i) EXPECT_EQ(together[i], cs[i].greedy) << cs[i].key << " batched";
}

TEST_P(CudaFunAsrNano, GraphReplayEqualsEager) {
  auto graphs = load(GetParam(), DType::kF16, true);
  auto eager = load(GetParam(), DType::kF16, false);
  ASSERT_TRUE(graphs && eager);
  const auto cs = cases(GetParam());
  EXPECT_EQ(transcribe(*graphs->as_speech_to_text(), cs), transcribe(*eager->as_speech_to_text(), cs));
}

TEST_P(CudaFunAsrNano, HalfPrecisionFollowsTheReference) {
  for (DType d : {DType::kF16, DType::kBF16}) {
    auto m = load(GetParam(), d);
    ASSERT_TRUE(m);
    for (const auto& c : cases(GetParam())) {
      const auto got = transcribe(*m->as_speech_to_text(), {c}).at(0);
      std::size_t same = 0;
      while (same < got.size() && same < c.greedy.size() && got[same] == c.greedy[same]) ++same;
      std::printf("  %s %s %s: greedy tokens matching transformers (f32) %zu / %zu\n", GetParam().c_str(),
                  std::string(dtype_name(d)).c_str(), c.key.c_str(), same, c.greedy.size());
      ASSERT_FALSE(got.empty()) << c.key;
      EXPECT_EQ(got[0], c.greedy[0]) << c.key << " " << dtype_name(d);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaFunAsrNano, ::testing::Values("funasr-nano-random-a", "funasr-nano-random-b"));

}  // namespace
}  // namespace fathom::models::audiollm
#endif  // FATHOM_WITH_CUDA
