// Several models spread over two GPUs in one process: each model's weights land on the device it was
// given (loading never changes the other device's free memory), every device gets its own worker, answers
// through HTTP equal the committed references while all models take traffic at once, and unloading models
// leaves the other device untouched. Skips itself on machines with fewer than two CUDA devices.
#if FATHOM_WITH_CUDA
#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "engine/model_manager.h"
#include "support/http_test_server.h"
#include "support/paths.h"
#include "support/vectors.h"

namespace fathom::engine {
namespace {

using fathom::testing::cosine;

using nlohmann::json;

struct Case {
  std::string text;
  std::vector<float> embedding;
};

std::vector<Case> reference_cases(const std::string& model) {
  std::ifstream in(fathom::testing::fixture("models/" + model + ".reference.json"));
  auto j = json::parse(in);
  std::vector<Case> out;
  for (const auto& c : j.at("cases"))
    if (!c.value("truncated", false))
      out.push_back({c.at("text").get<std::string>(), c.at("embedding").get<std::vector<float>>()});
  return out;
}

std::size_t free_bytes(int device) {
  cuda::set_device(device);
  std::size_t free = 0, total = 0;
  EXPECT_EQ(cudaMemGetInfo(&free, &total), cudaSuccess);
  return free;
}

struct Placement {
  std::string name, fixture;
  int device;
  DType dtype;
  double min_cosine;
};

TEST(CudaMultiGpu, ModelsOnTwoDevicesServeTogetherAndUnloadReturnsMemory) {
  if (cuda::device_count() < 2) GTEST_SKIP() << "needs two CUDA devices, found " << cuda::device_count();
  const std::vector<Placement> placements = {
      {"bert", "bert-mean-norm", 0, DType::kF32, 0.99999},
      {"roberta", "roberta-cls", 1, DType::kF32, 0.99999},
      {"xlmr", "xlmr-bf16-max", 1, DType::kBF16, 0.999},
  };
  ModelManager manager;
  const std::size_t start0 = free_bytes(0), start1 = free_bytes(1);
  for (const auto& p : placements) {
    const std::size_t free_other_before = free_bytes(1 - p.device);
    models::LoadOptions opt;
    opt.device = models::Device::cuda(p.device);
    opt.dtype = p.dtype;
    ASSERT_TRUE(manager.load(p.name, fathom::testing::fixture("models/" + p.fixture), opt).ok()) << p.name;
    auto m = manager.find(p.name);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->device, models::Device::cuda(p.device));
    // Loading touched only the chosen device. (Per-model drops on the chosen device are not asserted: the
    // fixtures are a few hundred KB and can fit in a driver page an earlier allocation already holds.)
    EXPECT_EQ(free_bytes(1 - p.device), free_other_before) << p.name << " touched the other device";
  }
  EXPECT_LT(free_bytes(0), start0) << "nothing was allocated on cuda:0";
  EXPECT_LT(free_bytes(1), start1) << "nothing was allocated on cuda:1";
  EXPECT_NE(&manager.worker(models::Device::cuda(0)), &manager.worker(models::Device::cuda(1)));

  fathom::testing::HttpTestServer server;
  ASSERT_NO_FATAL_FAILURE(server.start(server::ServerOptions{}, manager));
  std::vector<std::thread> clients;
  std::vector<std::string> failures(placements.size() * 4);
  for (std::size_t i = 0; i < failures.size(); ++i) {
    clients.emplace_back([&, i] {
      const Placement& p = placements[i % placements.size()];
      const auto cases = reference_cases(p.fixture);
      auto c = server.client(60);
      for (int round = 0; round < 5; ++round) {
        for (const auto& cs : cases) {
          json body = {{"model", p.name}, {"input", cs.text}};
          auto r = c.Post("/v1/embeddings", body.dump(), "application/json");
          if (!r || r->status != 200) {
            failures[i] = p.name + ": " + (r ? std::to_string(r->status) + " " + r->body : "no response");
            return;
          }
          auto got = json::parse(r->body)["data"][0]["embedding"].get<std::vector<float>>();
          const double cos = cosine(got, cs.embedding);
          if (!(cos >= p.min_cosine)) {
            failures[i] = p.name + ": cosine " + std::to_string(cos) + " for '" + cs.text + "'";
            return;
          }
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");

  // Unloading the two cuda:1 models frees their memory on cuda:1 (never less free than before) and leaves
  // cuda:0 untouched.
  const std::size_t free0_loaded = free_bytes(0), free1_loaded = free_bytes(1);
  ASSERT_TRUE(manager.unload("roberta").ok());
  ASSERT_TRUE(manager.unload("xlmr").ok());
  for (int i = 0; i < 100 && (manager.find("roberta") || manager.find("xlmr")); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(manager.find("roberta"));
  EXPECT_FALSE(manager.find("xlmr"));
  EXPECT_GE(free_bytes(1), free1_loaded);
  EXPECT_EQ(free_bytes(0), free0_loaded);
  // The cuda:0 model keeps serving.
  auto c = server.client(30);
  auto r = c.Post("/v1/embeddings", json({{"model", "bert"}, {"input", "still here"}}).dump(), "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  server.stop();
  manager.shutdown();
}

}  // namespace
}  // namespace fathom::engine
#endif  // FATHOM_WITH_CUDA
