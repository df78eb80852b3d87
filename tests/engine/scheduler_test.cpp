#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/device_worker.h"
#include "engine/embed_scheduler.h"
#include "engine/metrics.h"
#include "engine/model_manager.h"
#include "fake_model.h"

namespace fathom::engine {
namespace {

using fathom::testing::BatchLog;
using fathom::testing::fake_embedding;
using fathom::testing::FakeModel;
using fathom::testing::Gate;

std::vector<int32_t> seq(int length, int32_t first) {
  std::vector<int32_t> s(length, 1);
  s[0] = first;
  return s;
}

Embedding wait_ok(EmbeddingFuture& f) {
  auto r = f.get();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : Embedding{};
}

TEST(EmbedScheduler, BatchesStayUnderTheTokenBudgetAndEveryRequestGetsItsOwnVector) {
  auto log = std::make_shared<BatchLog>();
  auto gate = std::make_shared<Gate>();
  ModelManager manager;
  ServeOptions serve;
  serve.max_batch_size = 1000;
  ASSERT_TRUE(manager.add("m", std::make_unique<FakeModel>("m", 8, log, gate), /*max_batch_tokens=*/64, serve).ok());
  auto entry = manager.find("m");
  ASSERT_TRUE(entry && entry->embed_scheduler);

  // The first batch blocks in the model, so everything submitted after it queues up.
  auto first = entry->embed_scheduler->submit({seq(4, 5)});
  ASSERT_TRUE(first.ok());
  gate->await_waiters(1);
  std::vector<std::vector<int32_t>> sequences;
  for (int i = 0; i < 100; ++i) sequences.push_back(seq(1 + (i * 7) % 20, 100 + i));
  auto futures = entry->embed_scheduler->submit(sequences);
  ASSERT_TRUE(futures.ok());
  EXPECT_EQ(entry->embed_scheduler->stats().queued, 100u);
  gate->open();

  wait_ok(first.value()[0]);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(wait_ok(futures.value()[i]), fake_embedding(sequences[i], 8)) << "request " << i;
  }
  auto records = log->records();
  std::size_t total = 0;
  bool batched = false;
  for (const auto& r : records) {
    EXPECT_LE(r.tokens, 64u) << "a batch of " << r.size << " sequences, " << r.tokens << " tokens, exceeds the budget";
    total += r.size;
    batched |= r.size > 1;
  }
  EXPECT_EQ(total, 101u);
  EXPECT_TRUE(batched) << "queued requests were never batched together";
  EXPECT_LT(records.size(), 60u);
}

TEST(EmbedScheduler, RowsWhoseSizeFollowsTheSequenceAreSplitPerSequence) {
  // A per-token output: 2 floats per token after the first, the value the token's id.
  auto run = [](const std::vector<std::vector<int32_t>>& batch) -> Result<std::vector<float>> {
    std::vector<float> out;
    for (const auto& s : batch)
      for (std::size_t i = 1; i < s.size(); ++i) out.insert(out.end(), {float(s[i]), -float(s[i])});
    return out;
  };
  EmbedSchedulerOptions options;
  options.limits.max_batch_tokens = 64;
  auto scheduler = std::make_shared<EmbedScheduler>(
      "tokens", run, EmbedScheduler::RowFloats([](std::size_t n) { return 2 * (n - 1); }), options);
  EXPECT_EQ(scheduler->embedding_dim(), 0);
  auto futures = scheduler->submit({{1, 7, 8}, {1}, {1, 9}});
  ASSERT_TRUE(futures.ok());
  EXPECT_EQ(scheduler->step(), 6u);  // one batch of all three
  EXPECT_EQ(wait_ok(futures.value()[0]), (Embedding{7, -7, 8, -8}));
  EXPECT_EQ(wait_ok(futures.value()[1]), Embedding{});
  EXPECT_EQ(wait_ok(futures.value()[2]), (Embedding{9, -9}));

  // A model returning the wrong number of floats fails the batch's sequences, not the process.
  auto wrong = std::make_shared<EmbedScheduler>(
      "wrong", [](const std::vector<std::vector<int32_t>>&) -> Result<std::vector<float>> { return std::vector<float>(3); },
      EmbedScheduler::RowFloats([](std::size_t n) { return n; }), options);
  auto bad = wrong->submit({{1, 2}});
  ASSERT_TRUE(bad.ok());
  wrong->step();
  auto r = bad.value()[0].get();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected 2"), std::string::npos) << r.error().message;
}

// The value of `series{labels,le="bound"}` in /metrics text; -1 when absent.
long bucket(const std::string& text, const std::string& series, const std::string& labels, const std::string& bound) {
  const std::string key = series + "_bucket{" + labels + ",le=\"" + bound + "\"} ";
  const auto at = text.find(key);
  return at == std::string::npos ? -1 : std::stol(text.substr(at + key.size()));
}

TEST(EmbedScheduler, RecordsEachStepsTimeAndEveryInputsQueueWait) {
  auto log = std::make_shared<BatchLog>();
  auto gate = std::make_shared<Gate>();
  ModelManager manager;
  ASSERT_TRUE(manager.add("queue-wait-model", std::make_unique<FakeModel>("queue-wait-model", 8, log, gate), 64, {}).ok());
  auto entry = manager.find("queue-wait-model");
  ASSERT_TRUE(entry && entry->embed_scheduler);
  auto& metrics = Metrics::global();

  // The first batch holds the worker for 40 ms; ten inputs queue behind it.
  auto first = entry->embed_scheduler->submit({seq(4, 5)});
  ASSERT_TRUE(first.ok());
  gate->await_waiters(1);
  std::vector<std::vector<int32_t>> sequences;
  for (int i = 0; i < 10; ++i) sequences.push_back(seq(3, 200 + i));
  auto futures = entry->embed_scheduler->submit(sequences);
  ASSERT_TRUE(futures.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(40));
  gate->open();
  wait_ok(first.value()[0]);
  for (auto& f : futures.value()) wait_ok(f);

  // Recorded before the results are handed over, so complete once every future is ready.
  const auto steps = log->records().size();
  EXPECT_EQ(metrics.steps("queue-wait-model"), steps);
  EXPECT_EQ(metrics.queue_waits("queue-wait-model"), 11u);
  const std::string text = metrics.render();
  const std::string labels = "model=\"queue-wait-model\"";
  // Only the first input can have waited under 25 ms; the ten behind the held batch waited >= 40 ms.
  const long quick_waits = bucket(text, "fathom_queue_wait_seconds", labels, "0.025");
  EXPECT_GE(quick_waits, 0) << text;
  EXPECT_LE(quick_waits, 1) << text;
  EXPECT_EQ(bucket(text, "fathom_queue_wait_seconds", labels, "+Inf"), 11);
  // The held step took >= 40 ms: not in the 25 ms bucket; the others may be.
  const long quick_steps = bucket(text, "fathom_step_duration_seconds", labels, "0.025");
  EXPECT_GE(quick_steps, 0) << text;
  EXPECT_LE(quick_steps, static_cast<long>(steps) - 1) << text;
}

TEST(EmbedScheduler, AFailingRequestFailsAloneAndTheWorkerKeepsRunning) {
  auto gate = std::make_shared<Gate>();
  auto log = std::make_shared<BatchLog>();
  ModelManager manager;
  ASSERT_TRUE(manager.add("m", std::make_unique<FakeModel>("m", 4, log, gate), 1024).ok());
  auto scheduler = manager.find("m")->embed_scheduler;

  auto blocker = scheduler->submit({seq(2, 1)});
  ASSERT_TRUE(blocker.ok());
  gate->await_waiters(1);
  // Queued together, so they form one batch once the gate opens.
  std::vector<std::vector<int32_t>> mixed = {seq(3, 10), seq(3, fathom::testing::kFailId), seq(3, 11),
                                             seq(3, fathom::testing::kThrowId), seq(3, 12)};
  auto futures = scheduler->submit(mixed);
  ASSERT_TRUE(futures.ok());
  gate->open();

  auto& f = futures.value();
  EXPECT_EQ(wait_ok(f[0]), fake_embedding(mixed[0], 4));
  auto failed = f[1].get();
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("rejects id 666"), std::string::npos) << failed.error().message;
  EXPECT_EQ(failed.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(wait_ok(f[2]), fake_embedding(mixed[2], 4));
  auto thrown = f[3].get();
  ASSERT_FALSE(thrown.ok());
  EXPECT_EQ(thrown.error().code, ErrorCode::kInternal);
  EXPECT_NE(thrown.error().message.find("threw on id 777"), std::string::npos) << thrown.error().message;
  EXPECT_EQ(wait_ok(f[4]), fake_embedding(mixed[4], 4));
  // The five were tried as one batch first.
  bool saw_batch_of_five = false;
  for (const auto& r : log->records()) saw_batch_of_five |= r.size == 5;
  EXPECT_TRUE(saw_batch_of_five);

  // The worker survived: later requests still succeed.
  auto later = scheduler->submit({seq(5, 42)});
  ASSERT_TRUE(later.ok());
  EXPECT_EQ(wait_ok(later.value()[0]), fake_embedding(seq(5, 42), 4));
  EXPECT_EQ(scheduler->stats().failed, 2u);
}

// Submits one request at a time for model `name` from a queue of `count`, keeping it always busy.
TEST(DeviceWorker, OneBusyModelDoesNotStarveAnother) {
  auto log = std::make_shared<BatchLog>();
  auto gate = std::make_shared<Gate>();
  ModelManager manager;
  ServeOptions one_per_batch;
  one_per_batch.max_batch_size = 1;
  ASSERT_TRUE(manager.add("busy", std::make_unique<FakeModel>("busy", 4, log, gate), 1024, one_per_batch).ok());
  ASSERT_TRUE(manager.add("quiet", std::make_unique<FakeModel>("quiet", 4, log, gate), 1024, one_per_batch).ok());
  auto busy = manager.find("busy")->embed_scheduler;
  auto quiet = manager.find("quiet")->embed_scheduler;

  auto head = busy->submit({seq(8, 1)});
  gate->await_waiters(1);  // the worker is inside busy's first batch
  std::vector<std::vector<int32_t>> backlog(200, seq(8, 2));
  auto busy_futures = busy->submit(backlog);
  auto quiet_futures = quiet->submit(std::vector<std::vector<int32_t>>(10, seq(8, 3)));
  ASSERT_TRUE(busy_futures.ok() && quiet_futures.ok());
  gate->open();
  for (auto& f : quiet_futures.value()) wait_ok(f);
  for (auto& f : busy_futures.value()) wait_ok(f);

  auto records = log->records();
  ASSERT_EQ(records.size(), 211u);
  // Equal priorities and costs: the quiet model's 10 batches alternate with the busy one's.
  std::size_t last_quiet = 0;
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (records[i].model == "quiet") last_quiet = i;
  }
  EXPECT_LE(last_quiet, 22u) << "the quiet model waited behind the busy model's backlog";
}

// The device worker's clock in these tests: schedulers advance it by their step's duration.
std::atomic<int64_t> fake_clock_us{0};
double fake_clock() { return static_cast<double>(fake_clock_us.load()) * 1e-6; }

// A scheduler whose steps each take `step_us` on the fake clock and report `cost` in its own unit.
class TimedScheduler final : public Scheduler {
 public:
  TimedScheduler(std::string name, double priority, std::size_t cost, int64_t step_us, std::size_t steps,
                 std::shared_ptr<std::vector<std::string>> order, std::shared_ptr<std::mutex> mu)
      : name_(std::move(name)), priority_(priority), cost_(cost), step_us_(step_us), left_(steps),
        order_(std::move(order)), mu_(std::move(mu)) {}
  const std::string& name() const override { return name_; }
  double priority() const override { return priority_; }
  bool has_work() const override { return started_.load() && left_.load() > 0; }
  std::size_t step() override {
    fake_clock_us += step_us_;
    left_--;
    std::lock_guard lock(*mu_);
    order_->push_back(name_);
    return cost_;
  }
  void close(const Error&) override { left_ = 0; }
  void start() {
    started_ = true;
    wake();
  }

 private:
  std::string name_;
  double priority_;
  std::size_t cost_;
  int64_t step_us_;
  std::atomic<std::size_t> left_;
  std::atomic<bool> started_{false};
  std::shared_ptr<std::vector<std::string>> order_;
  std::shared_ptr<std::mutex> mu_;
};

// Runs schedulers a and b (both busy from the same moment) on one worker; returns the order of their steps.
std::vector<std::string> run_two(std::shared_ptr<TimedScheduler> a, std::shared_ptr<TimedScheduler> b,
                                 const std::shared_ptr<std::vector<std::string>>& order,
                                 const std::shared_ptr<std::mutex>& mu) {
  {
    DeviceWorker worker("test", fake_clock);
    worker.attach(a);
    worker.attach(b);
    {
      std::lock_guard lock(*mu);  // neither can step until both have started
      a->start();
      b->start();
    }
    while (a->has_work() || b->has_work()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::lock_guard lock(*mu);
  return *order;
}

TEST(DeviceWorker, SharesTheDeviceByPriority) {
  auto order = std::make_shared<std::vector<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  // Equal step durations: priority 3 gets three steps for each of priority 1's.
  auto steps = run_two(std::make_shared<TimedScheduler>("high", 3.0, 1, 1000, 90, order, mu),
                       std::make_shared<TimedScheduler>("low", 1.0, 1, 1000, 90, order, mu), order, mu);
  ASSERT_EQ(steps.size(), 180u);
  int high = 0;
  for (std::size_t i = 0; i < 80; ++i) high += steps[i] == "high";
  EXPECT_GE(high, 59);
  EXPECT_LE(high, 61);
}

// Steps that hold the device equally long get equal turns even when their own cost figures differ a
// thousandfold (an encoder batch of 16k tokens against a decoder step of 16 running jobs); a step twice as
// long counts twice.
TEST(DeviceWorker, SharesDeviceTimeWhateverUnitsTheSchedulersCountIn) {
  auto order = std::make_shared<std::vector<std::string>>();
  auto mu = std::make_shared<std::mutex>();
  auto steps = run_two(std::make_shared<TimedScheduler>("tokens", 1.0, 16384, 4000, 40, order, mu),
                       std::make_shared<TimedScheduler>("jobs", 1.0, 16, 2000, 80, order, mu), order, mu);
  ASSERT_EQ(steps.size(), 120u);
  int token_steps = 0;
  for (std::size_t i = 0; i < 60; ++i) token_steps += steps[i] == "tokens";
  EXPECT_GE(token_steps, 19) << "the scheduler reporting large costs was starved";
  EXPECT_LE(token_steps, 21);
}

TEST(ModelManager, ListsStateAndRefusesWorkAfterUnloadAndShutdown) {
  ModelManager manager;
  ASSERT_TRUE(manager.add("a", std::make_unique<FakeModel>("a"), 64).ok());
  ASSERT_TRUE(manager.add("b", std::make_unique<FakeModel>("b"), 64).ok());
  EXPECT_FALSE(manager.add("a", std::make_unique<FakeModel>("a"), 64).ok());
  auto list = manager.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]->name, "a");
  EXPECT_EQ(list[0]->state.load(), ModelState::kReady);
  EXPECT_EQ(list[0]->memory_bytes, 1234u);
  ASSERT_TRUE(list[0]->embedder.has_value());
  EXPECT_EQ(list[0]->embedder->max_input_tokens, 64);

  auto held = manager.find("a");
  ASSERT_TRUE(manager.unload("a").ok());
  EXPECT_EQ(manager.find("a"), nullptr);
  EXPECT_EQ(held->state.load(), ModelState::kUnloading);
  auto refused = held->embed_scheduler->submit({seq(2, 1)});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUnavailable);

  auto b = manager.find("b")->embed_scheduler;
  auto pending = b->submit({seq(3, 9)});
  ASSERT_TRUE(pending.ok());
  manager.shutdown();  // finishes queued work first
  EXPECT_EQ(wait_ok(pending.value()[0]), fake_embedding(seq(3, 9), 8));
  auto after = b->submit({seq(2, 1)});
  EXPECT_FALSE(after.ok());
}

TEST(EmbedScheduler, RefusesBeyondItsQueueLimit) {
  auto gate = std::make_shared<Gate>();
  ModelManager manager;
  ServeOptions serve;
  serve.max_queued = 5;
  ASSERT_TRUE(manager.add("m", std::make_unique<FakeModel>("m", 4, nullptr, gate), 64, serve).ok());
  auto s = manager.find("m")->embed_scheduler;
  auto head = s->submit({seq(2, 1)});
  gate->await_waiters(1);
  auto ok = s->submit(std::vector<std::vector<int32_t>>(5, seq(2, 1)));
  ASSERT_TRUE(ok.ok());
  auto over = s->submit({seq(2, 1)});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOverloaded);
  gate->open();
  for (auto& f : ok.value()) wait_ok(f);
}

}  // namespace
}  // namespace fathom::engine
