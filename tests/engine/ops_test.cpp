// Operations over HTTP with fake and fixture models: memory budgets, the admission limit (429 + Retry-After),
// request deadlines (504, queued work dropped), token limits, the admin API, /ready and /metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <future>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/metrics.h"
#include "engine/model_manager.h"
#include "fake_model.h"
#include "formats/tokenizer/tokenizer.h"
#include "server/server.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

using fathom::testing::FakeModel;
using fathom::testing::Gate;
using nlohmann::json;

class OpsServerTest : public ::testing::Test {
 protected:
  // Adds fake model `name` (gated by `gate` when given).
  void add_fake(const std::string& name, std::shared_ptr<Gate> gate = nullptr, std::size_t max_queued = 1024) {
    if (!tokenizer_) {
      auto t = formats::Tokenizer::load(fathom::testing::fixture("models/bert-mean-norm/tokenizer.json"));
      ASSERT_TRUE(t.ok());
      tokenizer_ = t.value();
    }
    engine::ServeOptions serve;
    serve.max_queued = max_queued;
    ASSERT_TRUE(manager_.add(name, std::make_unique<FakeModel>(name, 8, nullptr, gate, tokenizer_), 4096, serve).ok());
  }
  void start(ServerOptions options = {}) { ASSERT_NO_FATAL_FAILURE(server_.start(options, manager_)); }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  httplib::Client client() { return server_.client(60); }
  httplib::Result embed(const std::string& model, const std::string& input = "[[101, 7592, 102]]") {
    return client().Post("/v1/embeddings", R"({"model":")" + model + R"(","input":)" + input + "}", "application/json");
  }
  httplib::Result admin_post(const std::string& body, const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client().Post("/v1/admin/models", headers, body, "application/json");
  }
  httplib::Result admin_delete(const std::string& name, const std::string& token) {
    httplib::Headers headers;
    if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
    return client().Delete(("/v1/admin/models/" + name).c_str(), headers);
  }
  json error_of(const httplib::Result& r, int status) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    return j.is_object() && j.contains("error") ? j["error"] : json();
  }

  engine::ModelManager manager_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  fathom::testing::HttpTestServer server_;
};

TEST(MemoryBudget, LoadRefusesAModelOverItsBudgetNamingModelBudgetAndNeed) {
  engine::ModelManager manager;
  models::LoadOptions load;
  load.memory_budget = 64 * 1024;  // far below the fixture's ~3.8 MiB of weights
  const auto dir = fathom::testing::fixture("models/bert-mean-norm");
  Status s = manager.load("tiny", dir, load);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kOutOfMemory);
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("cannot load model 'tiny'"), std::string::npos) << m;
  EXPECT_NE(m.find("memory budget of 0.1 MiB (65536 bytes)"), std::string::npos) << m;
  EXPECT_NE(m.find("checkpoint files alone hold"), std::string::npos) << m;
  // The failure stays listed, then the name can be loaded again with enough room.
  auto failed = manager.find("tiny");
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state.load(), engine::ModelState::kFailed);
  EXPECT_EQ(failed->error, m);
  load.memory_budget = 64u << 20;
  ASSERT_TRUE(manager.load("tiny", dir, load).ok());
  auto ready = manager.find("tiny");
  EXPECT_EQ(ready->state.load(), engine::ModelState::kReady);
  EXPECT_EQ(ready->memory_budget, 64u << 20);
  EXPECT_GT(ready->memory_bytes, 64u * 1024);
  EXPECT_LE(ready->memory_bytes, 64u << 20);
}

TEST_F(OpsServerTest, FullQueueIs429WithRetryAfter) {
  auto gate = std::make_shared<Gate>();
  add_fake("m", gate, /*max_queued=*/2);
  start();
  // The first request runs (blocked in the model); two more inputs fill the queue; the next is refused.
  auto first = std::async(std::launch::async, [&] { return embed("m"); });
  gate->await_waiters(1);
  auto second = std::async(std::launch::async, [&] { return embed("m", "[[1,2],[3,4]]"); });
  auto s = manager_.find("m")->embed_scheduler;
  while (s->stats().queued < 2) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  auto over = embed("m");
  auto e = error_of(over, 429);
  EXPECT_EQ(e["type"], "rate_limit_error");
  EXPECT_EQ(e["code"], "overloaded");
  EXPECT_NE(e["message"].get<std::string>().find("at most 2 (--max-queued-requests)"), std::string::npos) << e;
  EXPECT_EQ(over->get_header_value("Retry-After"), "1");
  gate->open();
  EXPECT_EQ(first.get()->status, 200);
  EXPECT_EQ(second.get()->status, 200);
  EXPECT_EQ(embed("m")->status, 200);  // room again
}

TEST_F(OpsServerTest, DeadlineIs504AndDropsQueuedWork) {
  auto gate = std::make_shared<Gate>();
  add_fake("m", gate);
  ServerOptions options;
  options.request_timeout_s = 0.3;
  start(options);
  auto first = std::async(std::launch::async, [&] { return embed("m"); });
  gate->await_waiters(1);  // running, blocked
  const auto t0 = std::chrono::steady_clock::now();
  auto queued = embed("m", "[[1,2],[3,4],[5,6]]");
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto e = error_of(queued, 504);
  EXPECT_EQ(e["code"], "timeout");
  EXPECT_NE(e["message"].get<std::string>().find("0.3 s (--request-timeout-seconds)"), std::string::npos) << e;
  EXPECT_GE(waited, 0.25);
  EXPECT_LT(waited, 5.0);
  auto s = manager_.find("m")->embed_scheduler;
  EXPECT_EQ(s->stats().queued, 0u);     // its three inputs left the queue...
  EXPECT_EQ(s->stats().cancelled, 3u);  // ...without running
  error_of(first.get(), 504);           // the running request timed out too
  gate->open();
  for (int i = 0; i < 5000 && s->stats().sequences < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_EQ(s->stats().sequences, 1u);  // only the first request's input ever ran...
  EXPECT_EQ(s->stats().batches, 1u);    // ...in the one batch
  EXPECT_EQ(embed("m")->status, 200);
}

TEST_F(OpsServerTest, TokenLimitsAreNamedInTheirRefusal) {
  add_fake("m");
  ServerOptions options;
  options.max_input_tokens = 4;
  options.max_request_tokens = 6;
  start(options);
  EXPECT_EQ(embed("m", "[[1,2,3,4]]")->status, 200);
  auto e = error_of(embed("m", "[[1,2,3,4,5]]"), 400);
  EXPECT_EQ(e["code"], "too_many_tokens");
  EXPECT_NE(e["message"].get<std::string>().find("at most 4 tokens per input (--max-input-tokens)"), std::string::npos) << e;
  e = error_of(embed("m", "[[1,2,3,4],[5,6,7]]"), 400);
  EXPECT_NE(e["message"].get<std::string>().find("at most 6 tokens per request (--max-request-tokens)"), std::string::npos) << e;
  // truncate_prompt_tokens -1 truncates to the server's limit when it is below the model's.
  auto r = client().Post("/v1/embeddings", R"({"model":"m","input":[[1,2,3,4,5]],"truncate_prompt_tokens":-1})",
                         "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["usage"]["prompt_tokens"], 4);
}

TEST_F(OpsServerTest, AdminApiIsDisabledWithoutAToken) {
  add_fake("m");
  start();
  auto e = error_of(admin_post(R"({"name":"x","path":"/nowhere"})", "anything"), 403);
  EXPECT_EQ(e["code"], "admin_disabled");
  EXPECT_NE(e["message"].get<std::string>().find("--admin-token"), std::string::npos);
  error_of(admin_delete("m", ""), 403);
  EXPECT_EQ(embed("m")->status, 200);  // untouched
}

TEST_F(OpsServerTest, AdminLoadsAndUnloadsModelsWhileServing) {
  add_fake("m");
  ServerOptions options;
  options.admin_token = "tok";
  start(options);
  const std::string dir = fathom::testing::fixture("models/bert-mean-norm").string();
  const std::string load = R"({"name":"bert","path":")" + dir + R"(","options":{"budget":"64MiB","priority":2}})";

  EXPECT_EQ(error_of(admin_post(load, ""), 401)["code"], "unauthorized");
  EXPECT_EQ(error_of(admin_post(load, "wrong"), 401)["code"], "unauthorized");
  error_of(admin_delete("m", "wrong"), 401);
  EXPECT_EQ(error_of(embed("bert"), 404)["code"], "model_not_found");

  auto loaded = admin_post(load, "tok");
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  auto lj = json::parse(loaded->body);
  EXPECT_EQ(lj["id"], "bert");
  EXPECT_EQ(lj["state"], "ready");
  EXPECT_EQ(lj["memory_budget"], 64u << 20);
  auto r = embed("bert", R"("hello there")");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["data"][0]["embedding"].size(), 32u);
  EXPECT_EQ(error_of(admin_post(load, "tok"), 409)["code"], "model_exists");
  EXPECT_EQ(client().Get("/ready")->status, 200);

  // Over budget: a clear 400, listed as failed, /ready 503 until deleted.
  auto over = admin_post(R"({"name":"small","path":")" + dir + R"(","options":{"budget":4096}})", "tok");
  auto e = error_of(over, 400);
  EXPECT_EQ(e["code"], "memory_budget_exceeded");
  EXPECT_NE(e["message"].get<std::string>().find("model 'small' does not fit its memory budget"), std::string::npos) << e;
  auto models = json::parse(client().Get("/v1/models")->body)["data"];
  bool listed_failed = false;
  for (const auto& m : models) listed_failed |= m["id"] == "small" && m["state"] == "failed" && m.contains("error");
  EXPECT_TRUE(listed_failed) << models;
  auto ready = client().Get("/ready");
  EXPECT_EQ(ready->status, 503);
  EXPECT_NE(ready->body.find("small (failed"), std::string::npos) << ready->body;
  EXPECT_EQ(admin_delete("small", "tok")->status, 200);
  EXPECT_EQ(client().Get("/ready")->status, 200);

  // Bad requests name the field.
  EXPECT_EQ(error_of(admin_post(R"({"name":"x"})", "tok"), 400)["param"], "path");
  EXPECT_EQ(error_of(admin_post(R"({"name":"x","path":"/p","options":{"budget":"lots"}})", "tok"), 400)["param"],
            "options.budget");
  EXPECT_EQ(error_of(admin_post(R"({"name":"x","path":"/p","options":{"color":"red"}})", "tok"), 400)["param"],
            "options.color");
  error_of(admin_post(R"({"name":"x","path":"/does/not/exist"})", "tok"), 400);

  auto deleted = admin_delete("bert", "tok");
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_EQ(json::parse(deleted->body)["deleted"], true);
  EXPECT_EQ(error_of(embed("bert"), 404)["code"], "model_not_found");
  EXPECT_EQ(error_of(admin_delete("bert", "tok"), 404)["code"], "model_not_found");
  EXPECT_EQ(embed("m")->status, 200);
}

TEST_F(OpsServerTest, MetricsCountRequestsBatchesTokensAndShowGauges) {
  add_fake("metrics-model");
  start();
  auto& metrics = engine::Metrics::global();
  const auto before = metrics.requests("/v1/embeddings", "metrics-model", 200);
  const auto not_found_before = metrics.requests("/v1/embeddings", "", 404);
  const auto tokens_before = metrics.tokens("metrics-model");
  const auto waits_before = metrics.queue_waits("metrics-model");
  const auto steps_before = metrics.steps("metrics-model");
  ASSERT_EQ(embed("metrics-model", "[[1,2,3],[4,5]]")->status, 200);
  ASSERT_EQ(embed("metrics-model")->status, 200);
  error_of(embed("nobody"), 404);
  EXPECT_EQ(metrics.tokens("metrics-model"), tokens_before + 8);
  EXPECT_EQ(metrics.queue_waits("metrics-model"), waits_before + 3);  // one per input
  EXPECT_GE(metrics.steps("metrics-model"), steps_before + 1);
  engine::Metrics::global().add_audio_seconds("some-speech-model", 2.5);

  // The logger records a request after its response is written: wait for all three to land before reading.
  for (int i = 0; i < 400 && (metrics.requests("/v1/embeddings", "metrics-model", 200) < before + 2 ||
                              metrics.requests("/v1/embeddings", "", 404) < not_found_before + 1);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(metrics.requests("/v1/embeddings", "metrics-model", 200), before + 2);
  EXPECT_EQ(metrics.requests("/v1/embeddings", "", 404), not_found_before + 1);
  auto r = client().Get("/metrics");
  ASSERT_EQ(r->status, 200);
  EXPECT_NE(r->get_header_value("Content-Type").find("text/plain"), std::string::npos);
  const std::string& text = r->body;
  EXPECT_NE(text.find("# TYPE fathom_requests_total counter"), std::string::npos);
  EXPECT_NE(text.find("fathom_requests_total{route=\"/v1/embeddings\",model=\"metrics-model\",status=\"200\"}"),
            std::string::npos) << text;
  EXPECT_NE(text.find("fathom_requests_total{route=\"/v1/embeddings\",model=\"\",status=\"404\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_request_errors_total{status=\"404\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_request_duration_seconds_bucket{route=\"/v1/embeddings\",model=\"metrics-model\",le=\"0.0005\"}"),
            std::string::npos) << text;  // per model, with sub-millisecond buckets
  EXPECT_NE(text.find("fathom_queue_wait_seconds_count{model=\"metrics-model\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_step_duration_seconds_count{model=\"metrics-model\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_batch_size_count{model=\"metrics-model\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_tokens_processed_total{model=\"metrics-model\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_audio_seconds_processed_total{model=\"some-speech-model\"}"), std::string::npos);
  EXPECT_NE(text.find("fathom_queue_depth{model=\"metrics-model\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("fathom_model_memory_bytes{model=\"metrics-model\",device=\"cpu\"} 1234"), std::string::npos);
  EXPECT_NE(text.find("fathom_model_state{model=\"metrics-model\",state=\"ready\"} 1"), std::string::npos);
}

TEST_F(OpsServerTest, SpeechDeadlineIs504AndCancelsTheJob) {
  ASSERT_TRUE(manager_.load("tiny", fathom::testing::fixture("models/whisper-tiny-random-f32"), models::LoadOptions{}).ok());
  ServerOptions options;
  options.request_timeout_s = 1e-6;  // expires before the first decoder step can finish
  start(options);
  std::ifstream f(fathom::testing::fixture("audio/jfk_2s5_16k.flac"), std::ios::binary);
  std::string audio((std::istreambuf_iterator<char>(f)), {});
  ASSERT_GT(audio.size(), 1000u);
  httplib::MultipartFormDataItems form = {{"file", audio, "jfk.flac", "audio/flac"}, {"model", "tiny", "", ""}};
  auto r = client().Post("/v1/audio/transcriptions", form);
  auto e = error_of(r, 504);
  EXPECT_EQ(e["code"], "timeout");
  EXPECT_NE(e["message"].get<std::string>().find("1e-06 s (--request-timeout-seconds)"), std::string::npos) << e;
  // The cancelled job leaves the running batch: the model drains to idle.
  auto s = manager_.find("tiny")->speech_scheduler;
  for (int i = 0; i < 5000 && s->has_work(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_FALSE(s->has_work());
  EXPECT_EQ(s->stats().running, 0u);
}

TEST(Metrics, HistogramBucketsAreCumulativeAndLabelsEscaped) {
  engine::Histogram h({1, 10});
  h.observe(0.5);
  h.observe(5);
  h.observe(50);
  std::string out;
  h.render(out, "x", "a=\"b\"");
  EXPECT_EQ(out,
            "x_bucket{a=\"b\",le=\"1\"} 1\nx_bucket{a=\"b\",le=\"10\"} 2\nx_bucket{a=\"b\",le=\"+Inf\"} 3\n"
            "x_sum{a=\"b\"} 55.5\nx_count{a=\"b\"} 3\n");
  EXPECT_EQ(engine::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace fathom::server
