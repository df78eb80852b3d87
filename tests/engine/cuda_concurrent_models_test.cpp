// Two BERT-family models loaded concurrent (a device worker and a prioritised stream each, a private GEMM
// workspace each) on cuda:0 with CUDA graphs on, driven from two threads at once: every answer equals what
// the model gave alone before the load started, and the committed reference (cosine). Skips without CUDA.
#if FATHOM_WITH_CUDA
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "engine/model_manager.h"
#include "support/paths.h"
#include "support/vectors.h"

namespace fathom::engine {
namespace {

using fathom::testing::cosine;

struct Case {
  std::vector<int32_t> ids;
  std::vector<float> embedding;
};

std::vector<Case> reference_cases(const std::string& fixture) {
  std::ifstream in(fathom::testing::fixture("models/" + fixture + ".reference.json"));
  auto j = nlohmann::json::parse(in);
  std::vector<Case> out;
  for (const auto& c : j.at("cases"))
    if (!c.value("truncated", false))
      out.push_back({c.at("token_ids").get<std::vector<int32_t>>(), c.at("embedding").get<std::vector<float>>()});
  return out;
}

struct Served {
  std::string name, fixture;
  DType dtype;
  double priority;
  double min_cosine;
  std::vector<Case> cases;
  std::vector<std::vector<float>> alone;  // each case's answer before the concurrent load
};

std::vector<std::vector<float>> embed_all(const LoadedModel& m, const std::vector<Case>& cases, std::string* error) {
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& c : cases) seqs.push_back(c.ids);
  auto futures = m.embed_scheduler->submit(seqs);
  if (!futures.ok()) {
    *error = futures.error().message;
    return {};
  }
  std::vector<std::vector<float>> out;
  for (auto& f : futures.value()) {
    auto r = f.get();
    if (!r.ok()) {
      *error = r.error().message;
      return {};
    }
    out.push_back(std::move(r).value());
  }
  return out;
}

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

}  // namespace
}  // namespace fathom::engine
#endif
