// Models loaded concurrent (a device worker and a prioritised stream each, a private GEMM workspace each)
// on cuda:0 with CUDA graphs on, driven from several threads at once: two BERT-family models, then Whisper
// beside an embedding model. Every answer equals what the model gave alone before the load started, and
// the committed reference (embeddings by cosine, Whisper token for token). Skips without CUDA.
#if FATHOM_WITH_CUDA
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>
#include <tuple>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "engine/model_manager.h"
#include "served_answers.h"
#include "support/files.h"
#include "support/paths.h"
#include "support/whisper_inputs.h"
#include "support/vectors.h"

namespace fathom::engine {
namespace {

using fathom::testing::cosine;

using Case = fathom::testing::EmbeddingCase;
using fathom::testing::embed_all;
using fathom::testing::reference_cases;
using fathom::testing::transcribe;

struct Served {
  std::string name, fixture;
  DType dtype;
  double priority;
  double min_cosine;
  std::vector<Case> cases;
  std::vector<std::vector<float>> alone;  // each case's answer before the concurrent load
};

TEST(CudaConcurrentModels, TwoModelsOnOneGpuFromTwoThreadsEqualTheReferences) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  std::vector<Served> served = {
      {"bert", "bert-mean-norm", DType::kF32, 4.0, 0.99999, {}, {}},
      {"xlmr", "xlmr-bf16-max", DType::kBF16, 1.0, 0.999, {}, {}},
  };
  ModelManager manager;
  for (auto& s : served) {
    models::LoadOptions opt;
    opt.device = models::Device::cuda(0);
    opt.dtype = s.dtype;
    opt.cuda_graphs = true;
    ServeOptions serve;
    serve.concurrent = true;
    serve.priority = s.priority;
    auto st = manager.load(s.name, fathom::testing::fixture("models/" + s.fixture), opt, serve);
    ASSERT_TRUE(st.ok()) << st.error().message;
    auto m = manager.find(s.name);
    ASSERT_TRUE(m && m->embed_scheduler);
    EXPECT_TRUE(m->concurrent) << s.name << " did not get a worker of its own";
    s.cases = reference_cases(s.fixture);
    ASSERT_FALSE(s.cases.empty());
    std::string error;
    s.alone = embed_all(*m, s.cases, &error);
    ASSERT_EQ(s.alone.size(), s.cases.size()) << error;
    for (std::size_t i = 0; i < s.cases.size(); ++i)
      EXPECT_GE(cosine(s.alone[i], s.cases[i].embedding), s.min_cosine) << s.name << " case " << i;
  }
  EXPECT_EQ(manager.worker_count(), 2u);  // one per concurrent model, no shared one

  // Both models at once, from two threads, many rounds.
  constexpr int kRounds = 40;
  std::vector<std::string> errors(served.size());
  std::vector<int> mismatches(served.size(), 0);
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < served.size(); ++k) {
    threads.emplace_back([&, k] {
      const Served& s = served[k];
      auto m = manager.find(s.name);
      // Exact equality is too strict across batch compositions (another bucket's graph); per-dtype bounds.
      const double tol = s.dtype == DType::kF32 ? 1e-4 : 3e-2;
      for (int round = 0; round < kRounds && errors[k].empty(); ++round) {
        auto got = embed_all(*m, s.cases, &errors[k]);
        if (got.size() != s.cases.size()) break;
        for (std::size_t i = 0; i < got.size(); ++i) {
          float worst = 0;
          for (std::size_t d = 0; d < got[i].size(); ++d)
            worst = std::max(worst, std::fabs(got[i][d] - s.alone[i][d]) / (1.0f + std::fabs(s.alone[i][d])));
          if (!(worst <= tol) || cosine(got[i], s.cases[i].embedding) < s.min_cosine) mismatches[k]++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < served.size(); ++k) {
    EXPECT_TRUE(errors[k].empty()) << served[k].name << ": " << errors[k];
    EXPECT_EQ(mismatches[k], 0) << served[k].name << ": answers under concurrent load differ from alone";
  }
  EXPECT_TRUE(manager.faults().empty());
  for (const auto& s : served) EXPECT_TRUE(manager.unload(s.name).ok());
}

TEST(CudaConcurrentModels, WhisperBesideAnEmbeddingModelKeepsEveryAnswer) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device";
  const std::string whisper_fixture = "whisper-tiny-random-f32";
  const auto reference = fathom::testing::read_json(fathom::testing::fixture("models/" + whisper_fixture + ".reference.json"));
  const auto jfk = fathom::testing::jfk_input(reference.at("n_mels").get<int>());
  ASSERT_FALSE(jfk.samples.empty());
  ModelManager manager;
  for (const auto& [name, fixture, priority] : {std::tuple{"whisper", whisper_fixture, 1.0},
                                                std::tuple{"bert", std::string("bert-mean-norm"), 4.0}}) {
    models::LoadOptions opt;
    opt.device = models::Device::cuda(0);
    opt.dtype = DType::kF32;
    opt.cuda_graphs = true;
    ServeOptions serve;
    serve.concurrent = true;
    serve.priority = priority;
    auto st = manager.load(name, fathom::testing::fixture("models/" + fixture), opt, serve);
    ASSERT_TRUE(st.ok()) << st.error().message;
    EXPECT_TRUE(manager.find(name)->concurrent) << name << " did not get a worker of its own";
  }
  EXPECT_EQ(manager.worker_count(), 2u);
  auto whisper = manager.find("whisper");
  auto bert = manager.find("bert");
  ASSERT_TRUE(whisper->speech_scheduler && bert->embed_scheduler);

  // Alone first: each generate() case of the reference, and the embeddings.
  const int max_new = reference.at("max_new_tokens").get<int>();
  std::vector<models::SpeechOptions> options;
  std::vector<std::vector<int32_t>> alone_tokens;
  for (const auto& [key, c] : reference.at("generate").items()) {
    if (!c.contains("tokens")) continue;
    options.push_back(fathom::testing::speech_options_of(c["kwargs"], max_new));
    std::string error;
    alone_tokens.push_back(transcribe(*whisper, jfk.samples, options.back(), &error));
    ASSERT_TRUE(error.empty()) << key << ": " << error;
    EXPECT_EQ(alone_tokens.back(), c["tokens"].get<std::vector<int32_t>>()) << key;
  }
  ASSERT_EQ(options.size(), 4u);
  const auto cases = reference_cases("bert-mean-norm");
  std::string embed_error;
  const auto alone_embeddings = embed_all(*bert, cases, &embed_error);
  ASSERT_EQ(alone_embeddings.size(), cases.size()) << embed_error;

  // Together: four transcription threads (each case, several rounds) beside one embedding thread.
  constexpr int kRounds = 3;
  std::vector<std::string> errors(options.size() + 1);
  std::vector<int> mismatches(options.size() + 1, 0);
  std::atomic<int> transcriptions_left{static_cast<int>(options.size())};
  std::vector<std::thread> threads;
  for (std::size_t k = 0; k < options.size(); ++k) {
    threads.emplace_back([&, k] {
      for (int round = 0; round < kRounds && errors[k].empty(); ++round)
        if (transcribe(*whisper, jfk.samples, options[k], &errors[k]) != alone_tokens[k]) mismatches[k]++;
      transcriptions_left--;
    });
  }
  int embed_rounds = 0;
  threads.emplace_back([&] {
    const std::size_t k = options.size();
    while ((transcriptions_left.load() > 0 || embed_rounds < 10) && errors[k].empty()) {
      auto got = embed_all(*bert, cases, &errors[k]);
      if (got.size() != cases.size()) break;
      ++embed_rounds;
      for (std::size_t i = 0; i < got.size(); ++i)
        if (cosine(got[i], alone_embeddings[i]) < 0.99999 || cosine(got[i], cases[i].embedding) < 0.99999) mismatches[k]++;
    }
  });
  for (auto& t : threads) t.join();
  for (std::size_t k = 0; k < errors.size(); ++k) {
    EXPECT_TRUE(errors[k].empty()) << "thread " << k << ": " << errors[k];
    EXPECT_EQ(mismatches[k], 0) << "thread " << k << ": answers under concurrent load differ from alone";
  }
  EXPECT_GE(embed_rounds, 10);
  EXPECT_GE(whisper->speech_scheduler->stats().completed, options.size() * (kRounds + 1));
  EXPECT_TRUE(manager.faults().empty());
  EXPECT_TRUE(manager.unload("whisper").ok());
  EXPECT_TRUE(manager.unload("bert").ok());
}

}  // namespace
}  // namespace fathom::engine
#endif
