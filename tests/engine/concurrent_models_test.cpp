// Models served with ServeOptions::concurrent: each gets a device worker of its own, so a model blocked in a
// long step does not hold up a concurrent model's requests; the others keep sharing one worker per device
// (where, as before, a blocked step holds up every model of the device).
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "engine/model_manager.h"
#include "fake_model.h"

namespace fathom::engine {
namespace {

using fathom::testing::fake_embedding;
using fathom::testing::FakeModel;
using fathom::testing::Gate;
using namespace std::chrono_literals;

std::vector<int32_t> seq(int length, int32_t first) {
  std::vector<int32_t> s(length, 1);
  s[0] = first;
  return s;
}

ServeOptions concurrent(bool on, double priority = 1.0) {
  ServeOptions o;
  o.concurrent = on;
  o.priority = priority;
  return o;
}

// A model that cannot overlap others on its device (as a CUDA model without its own GEMM workspace).
class SerialOnlyModel final : public models::Model {
 public:
  explicit SerialOnlyModel(std::string name) : inner_(std::move(name)) {}
  const models::ModelInfo& info() const override { return inner_.info(); }
  std::string architecture() const override { return inner_.architecture(); }
  DType dtype() const override { return inner_.dtype(); }
  models::Device device() const override { return inner_.device(); }
  std::size_t memory_bytes() const override { return inner_.memory_bytes(); }
  models::Embedder* as_embedder() override { return inner_.as_embedder(); }
  bool runs_concurrently() const override { return false; }

 private:
  FakeModel inner_;
};

TEST(ConcurrentModels, EachConcurrentModelGetsItsOwnWorkerAndTheOthersShareOne) {
  ModelManager manager;
  ASSERT_TRUE(manager.add("a", std::make_unique<FakeModel>("a"), 64, concurrent(true)).ok());
  ASSERT_TRUE(manager.add("b", std::make_unique<FakeModel>("b"), 64, concurrent(true)).ok());
  ASSERT_TRUE(manager.add("c", std::make_unique<FakeModel>("c"), 64, concurrent(false)).ok());
  ASSERT_TRUE(manager.add("d", std::make_unique<FakeModel>("d"), 64).ok());
  EXPECT_EQ(manager.worker_count(), 3u);  // cpu (c, d), cpu/a, cpu/b
  EXPECT_TRUE(manager.find("a")->concurrent);
  EXPECT_TRUE(manager.find("b")->concurrent);
  EXPECT_FALSE(manager.find("c")->concurrent);
  EXPECT_FALSE(manager.find("d")->concurrent);
  // Every model answers through its worker.
  for (const char* name : {"a", "b", "c", "d"}) {
    auto f = manager.find(name)->embed_scheduler->submit({seq(3, 7)});
    ASSERT_TRUE(f.ok());
    auto r = f.value()[0].get();
    ASSERT_TRUE(r.ok()) << name << ": " << r.error().message;
    EXPECT_EQ(r.value(), fake_embedding(seq(3, 7), 8)) << name;
  }
  // Unloading and loading a concurrent model again reuses its worker.
  ASSERT_TRUE(manager.unload("a").ok());
  ASSERT_TRUE(manager.add("a", std::make_unique<FakeModel>("a"), 64, concurrent(true)).ok());
  EXPECT_EQ(manager.worker_count(), 3u);
  auto f = manager.find("a")->embed_scheduler->submit({seq(2, 9)});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f.value()[0].get().ok());
}

TEST(ConcurrentModels, AModelThatCannotOverlapFallsBackToTheSharedWorker) {
  ModelManager manager;
  ASSERT_TRUE(manager.add("serial", std::make_unique<SerialOnlyModel>("serial"), 64, concurrent(true)).ok());
  ASSERT_TRUE(manager.add("other", std::make_unique<FakeModel>("other"), 64).ok());
  EXPECT_FALSE(manager.find("serial")->concurrent);
  EXPECT_EQ(manager.worker_count(), 1u);
  auto f = manager.find("serial")->embed_scheduler->submit({seq(2, 5)});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f.value()[0].get().ok());
}

// `heavy` is stuck inside a step (its gate is closed); does `light` still answer?
bool light_answers_while_heavy_is_blocked(bool heavy_concurrent, bool light_concurrent) {
  auto gate = std::make_shared<Gate>();
  ModelManager manager;
  EXPECT_TRUE(manager.add("heavy", std::make_unique<FakeModel>("heavy", 8, nullptr, gate), 64,
                          concurrent(heavy_concurrent)).ok());
  EXPECT_TRUE(manager.add("light", std::make_unique<FakeModel>("light"), 64, concurrent(light_concurrent, 4.0)).ok());
  auto heavy = manager.find("heavy")->embed_scheduler->submit({seq(8, 3)});
  EXPECT_TRUE(heavy.ok());
  gate->await_waiters(1);  // heavy's step is running and blocked
  auto light = manager.find("light")->embed_scheduler->submit({seq(4, 11)});
  EXPECT_TRUE(light.ok());
  const bool answered = light.value()[0].wait_for(heavy_concurrent || light_concurrent ? 10s : 300ms) ==
                        std::future_status::ready;
  if (answered) {
    auto r = light.value()[0].get();
    EXPECT_TRUE(r.ok());
    if (r.ok()) EXPECT_EQ(r.value(), fake_embedding(seq(4, 11), 8));
  }
  gate->open();
  auto h = heavy.value()[0].get();
  EXPECT_TRUE(h.ok());
  if (!answered) EXPECT_TRUE(light.value()[0].get().ok());  // answered once heavy's step ended
  return answered;
}

TEST(ConcurrentModels, ABlockedStepDoesNotHoldUpAConcurrentModel) {
  EXPECT_TRUE(light_answers_while_heavy_is_blocked(true, true));
  // One concurrent model is enough: the two no longer share a worker.
  EXPECT_TRUE(light_answers_while_heavy_is_blocked(true, false));
  EXPECT_TRUE(light_answers_while_heavy_is_blocked(false, true));
}

TEST(ConcurrentModels, WithoutConcurrencyABlockedStepHoldsUpTheDevicesOtherModels) {
  EXPECT_FALSE(light_answers_while_heavy_is_blocked(false, false));
}

TEST(ConcurrentModels, StreamPriorityLevelsGrowWithPriority) {
  EXPECT_EQ(stream_priority_levels(0.5), 0);
  EXPECT_EQ(stream_priority_levels(1.0), 0);
  EXPECT_EQ(stream_priority_levels(1.4), 0);
  EXPECT_EQ(stream_priority_levels(1.5), 1);
  EXPECT_EQ(stream_priority_levels(2.0), 1);
  EXPECT_EQ(stream_priority_levels(4.0), 2);
  EXPECT_EQ(stream_priority_levels(8.0), 3);
  EXPECT_EQ(stream_priority_levels(1e300), 20);  // capped; the device clamps to its range
}

}  // namespace
}  // namespace fathom::engine
