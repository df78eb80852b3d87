// Sticky device faults: the fault-injection hook and the backend fault registry stop only the faulted
// models (503 naming model, device and error), /health and /ready answer 503 with the fault, /metrics shows
// it, and the other models keep serving. Also: a model that fails to load leaves the others serving.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/device_worker.h"
#include "engine/embed_scheduler.h"
#include "engine/model_manager.h"
#include "fake_model.h"
#include "runtime/device_fault.h"
#include "server/server.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::engine {
namespace {

using nlohmann::json;

class DeviceFaultHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(manager_.load("bert", fathom::testing::fixture("models/bert-mean-norm"), models::LoadOptions{}).ok());
    ASSERT_TRUE(manager_.load("roberta", fathom::testing::fixture("models/roberta-cls"), models::LoadOptions{}).ok());
    ASSERT_NO_FATAL_FAILURE(server_.start(server::ServerOptions{}, manager_));
  }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  httplib::Result embed(const std::string& model) {
    return server_.client(60).Post("/v1/embeddings", json{{"model", model}, {"input", "Hello, world!"}}.dump(),
                                   "application/json");
  }

  ModelManager manager_;
  fathom::testing::HttpTestServer server_;
};

TEST_F(DeviceFaultHttp, AnInjectedFaultStopsThatModelAndMakesTheServerUnhealthyWhileOthersServe) {
  ASSERT_EQ(embed("bert")->status, 200);
  ASSERT_EQ(server_.client(10).Get("/health")->status, 200);
  auto bert = manager_.find("bert");
  manager_.worker(bert->device).inject_fault(bert->embed_scheduler.get(), "injected: an illegal memory access");

  auto r = embed("bert");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503) << r->body;
  const auto err = json::parse(r->body)["error"];
  const std::string message = err["message"];
  EXPECT_NE(message.find("'bert'"), std::string::npos) << message;
  EXPECT_NE(message.find("cpu"), std::string::npos) << message;
  EXPECT_NE(message.find("illegal memory access"), std::string::npos) << message;

  // The other model keeps serving, repeatedly.
  for (int i = 0; i < 3; ++i) {
    auto ok = embed("roberta");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
  }

  auto health = server_.client(10).Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503) << health->body;
  const json h = json::parse(health->body);
  EXPECT_EQ(h["status"], "unhealthy");
  ASSERT_EQ(h["faults"].size(), 1u) << h;
  EXPECT_EQ(h["faults"][0]["model"], "bert");
  EXPECT_EQ(h["faults"][0]["device"], "cpu");
  EXPECT_EQ(h["faults"][0]["error"], "injected: an illegal memory access");
  EXPECT_EQ(h["error"]["code"], "device_fault");

  auto ready = server_.client(10).Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_NE(ready->body.find("device fault"), std::string::npos) << ready->body;
  EXPECT_EQ(json::parse(ready->body)["models"]["bert"], "device_fault");

  auto metrics = server_.client(10).Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("fathom_device_fault{model=\"bert\",device=\"cpu\"} 1"), std::string::npos)
      << metrics->body.substr(0, 2000);

  // A second injection does not duplicate the fault.
  manager_.worker(bert->device).inject_fault(bert->embed_scheduler.get(), "again");
  EXPECT_EQ(manager_.faults().size(), 1u);
}

TEST_F(DeviceFaultHttp, AModelThatFailsToLoadLeavesTheOthersServing) {
  const auto broken = fathom::testing::fixture("tokenizers");  // a folder without config.json
  EXPECT_FALSE(manager_.load("broken", broken, models::LoadOptions{}).ok());
  EXPECT_EQ(manager_.find("broken")->state.load(), ModelState::kFailed);
  EXPECT_EQ(embed("bert")->status, 200);
  EXPECT_EQ(embed("roberta")->status, 200);
  EXPECT_EQ(server_.client(10).Get("/health")->status, 200);  // liveness: the process still serves
  EXPECT_EQ(server_.client(10).Get("/ready")->status, 503);   // readiness names the failed model
}

std::vector<int32_t> ids(int n, int32_t first) {
  std::vector<int32_t> s(n, 1);
  s[0] = first;
  return s;
}

// A fault reported by a backend (as the CUDA check does for sticky errors) during a step closes every
// scheduler of that device; queued work fails at once with 503 instead of waiting; a scheduler attached
// later is closed at once. The device name is private to this test so no other test sees the fault.
TEST(DeviceFault, AReportedDeviceFaultClosesEverySchedulerOfThatDevice) {
  auto gate = std::make_shared<fathom::testing::Gate>();
  auto log = std::make_shared<fathom::testing::BatchLog>();
  fathom::testing::FakeModel a("a", 4, log, gate), b("b", 4, log, nullptr), c("c", 4, log, nullptr);
  EmbedSchedulerOptions options;
  auto sa = std::make_shared<EmbedScheduler>("a", *a.as_embedder(), options);
  auto sb = std::make_shared<EmbedScheduler>("b", *b.as_embedder(), options);
  const std::string device = "test-device-fault:0";
  DeviceWorker worker(device);
  worker.attach(sa);
  worker.attach(sb);

  auto running = sa->submit({ids(2, 1)});  // blocks inside the model until the gate opens
  ASSERT_TRUE(running.ok());
  gate->await_waiters(1);
  auto queued = sb->submit({ids(2, 2)});
  ASSERT_TRUE(queued.ok());
  report_device_fault(device, "CUDA error cudaErrorIllegalAddress (an illegal memory access was encountered)");
  gate->open();  // the step ends; the worker sees the fault

  (void)running.value()[0].get();  // finished or failed: it was already running
  auto r = queued.value()[0].get();
  // Either b's input ran before the worker saw the fault, or it failed with the fault; it never hangs.
  if (!r.ok()) {
    EXPECT_EQ(r.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(r.error().message.find("cudaErrorIllegalAddress"), std::string::npos) << r.error().message;
  }
  for (int i = 0; i < 200 && worker.faults().size() < 2; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(worker.faults().size(), 2u);
  for (auto* s : {sa.get(), sb.get()}) {
    auto later = s->submit({ids(2, 3)});
    ASSERT_FALSE(later.ok());
    EXPECT_EQ(later.error().code, ErrorCode::kUnavailable);
    EXPECT_NE(later.error().message.find(device), std::string::npos) << later.error().message;
  }
  auto sc = std::make_shared<EmbedScheduler>("c", *c.as_embedder(), options);
  worker.attach(sc);
  EXPECT_FALSE(sc->submit({ids(2, 4)}).ok());
  EXPECT_EQ(worker.faults().size(), 3u);
  worker.detach(sa.get());
  worker.detach(sb.get());
  worker.detach(sc.get());
}

}  // namespace
}  // namespace fathom::engine
