// The HTTP server over a fake embedding model (with a real tokenizer): routing, errors, concurrency.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/embedding_postprocess.h"
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

std::shared_ptr<const formats::Tokenizer> bert_tokenizer() {
  auto t = formats::Tokenizer::load(fathom::testing::fixture("models/bert-mean-norm/tokenizer.json"));
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? t.value() : nullptr;
}

class HttpServerTest : public ::testing::Test {
 protected:
  // `limits` keeps ServerOptions' defaults when false; true sets the small limits most tests probe.
  void start(std::shared_ptr<Gate> gate = nullptr, bool small_limits = true) {
    tokenizer_ = bert_tokenizer();
    ASSERT_TRUE(tokenizer_);
    auto embed = std::make_unique<FakeModel>("fake", 8, nullptr, gate, tokenizer_);
    embed->fake().matryoshka_ = true;
    ASSERT_TRUE(manager_.add("fake", std::move(embed), 4096).ok());
    ASSERT_TRUE(manager_.add("plain", std::make_unique<FakeModel>("plain", 8, nullptr, nullptr, tokenizer_), 4096).ok());
    ASSERT_TRUE(manager_
                    .add("speech", std::make_unique<FakeModel>("speech", 8, nullptr, nullptr, nullptr,
                                                               std::vector<models::Task>{models::Task::kTranscribe}),
                         4096)
                    .ok());
    ServerOptions options;
    if (small_limits) {
      options.max_body_bytes = 4096;
      options.max_inputs = 16;
    }
    ASSERT_NO_FATAL_FAILURE(server_.start(options, manager_));
  }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  httplib::Client client() { return server_.client(30); }
  httplib::Result post(const std::string& path, const std::string& body, const char* type = "application/json") {
    auto c = client();
    return c.Post(path.c_str(), body, type);
  }
  // Checks the OpenAI error shape and returns the error object.
  json expect_error(const httplib::Result& r, int status) {
    EXPECT_TRUE(r) << "no response";
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    json j = json::parse(r->body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j.contains("error")) << r->body;
    if (!j.is_object() || !j.contains("error")) return {};
    const auto& e = j["error"];
    EXPECT_TRUE(e["message"].is_string());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_TRUE(e.contains("param"));
    EXPECT_TRUE(e.contains("code"));
    return e;
  }

  engine::ModelManager manager_;
  std::shared_ptr<const formats::Tokenizer> tokenizer_;
  fathom::testing::HttpTestServer server_;
};

TEST_F(HttpServerTest, EmbedsTextAndTokenInputs) {
  start();
  auto r = post("/v1/embeddings", R"({"model":"fake","input":["Hello, world!","a"]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  auto j = json::parse(r->body);
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["model"], "fake");
  ASSERT_EQ(j["data"].size(), 2u);
  auto ids = tokenizer_->encode("Hello, world!").value();
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["data"][0]["index"], 0);
  EXPECT_EQ(j["data"][0]["embedding"].get<std::vector<float>>(), fathom::testing::fake_embedding(ids, 8));
  EXPECT_EQ(j["usage"]["prompt_tokens"], ids.size() + 3);
  EXPECT_EQ(j["usage"]["total_tokens"], ids.size() + 3);

  auto t = post("/v1/embeddings", R"({"model":"fake","input":[[101,7592,102],[5]],"dimensions":4,"normalize":false})");
  ASSERT_EQ(t->status, 200) << t->body;
  auto tj = json::parse(t->body);
  auto expect = fathom::testing::fake_embedding({101, 7592, 102}, 8);
  expect.resize(4);
  EXPECT_EQ(tj["data"][0]["embedding"].get<std::vector<float>>(), expect);
  EXPECT_EQ(tj["usage"]["prompt_tokens"], 4);

  auto b = post("/v1/embeddings", R"({"model":"fake","input":[5],"encoding_format":"base64"})");
  ASSERT_EQ(b->status, 200) << b->body;
  EXPECT_EQ(json::parse(b->body)["data"][0]["embedding"].get<std::string>().size(), 44u);  // 32 bytes

  auto models = client().Get("/v1/models");
  ASSERT_EQ(models->status, 200);
  auto mj = json::parse(models->body);
  EXPECT_EQ(mj["object"], "list");
  ASSERT_EQ(mj["data"].size(), 3u);
  EXPECT_EQ(mj["data"][0]["id"], "fake");
  EXPECT_EQ(mj["data"][0]["owned_by"], "fathom");
  EXPECT_EQ(mj["data"][0]["tasks"], json({"embed"}));
  EXPECT_EQ(mj["data"][0]["endpoints"], json({"/v1/embeddings", "/v1/score", "/v1/rerank"}));
  EXPECT_EQ(mj["data"][0]["state"], "ready");
  EXPECT_EQ(client().Get("/health")->status, 200);
  EXPECT_EQ(json::parse(client().Get("/version")->body)["name"], "fathom");
}

TEST_F(HttpServerTest, EveryErrorHasTheOpenAiShapeAndTheServerKeepsServing) {
  start();
  EXPECT_EQ(expect_error(post("/v1/embeddings", "{not json"), 400)["code"], "invalid_json");
  expect_error(post("/v1/embeddings", "[1,2]"), 400);
  expect_error(post("/v1/embeddings", R"({"model":"fake","input":"x"})", "text/plain"), 415);
  auto big = expect_error(post("/v1/embeddings", std::string(5000, ' ')), 413);
  EXPECT_NE(big["message"].get<std::string>().find("4096"), std::string::npos);
  expect_error(client().Get("/v1/nothing"), 404);
  auto wrong_method = client().Get("/v1/embeddings");
  expect_error(wrong_method, 405);
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "POST");
  auto unserved = expect_error(post("/v1/classify", "{}"), 404);
  EXPECT_NE(unserved["message"].get<std::string>().find("fake (embed)"), std::string::npos) << unserved;

  auto unknown = expect_error(post("/v1/embeddings", R"({"model":"nope","input":"x"})"), 404);
  EXPECT_EQ(unknown["code"], "model_not_found");
  EXPECT_NE(unknown["message"].get<std::string>().find("fake"), std::string::npos);
  auto mismatch = expect_error(post("/v1/embeddings", R"({"model":"speech","input":"x"})"), 400);
  EXPECT_EQ(mismatch["code"], "model_capability_mismatch");
  EXPECT_EQ(mismatch["param"], "model");
  EXPECT_NE(mismatch["message"].get<std::string>().find("it supports: transcribe (/v1/audio/transcriptions)"),
            std::string::npos)
      << mismatch;

  EXPECT_EQ(expect_error(post("/v1/embeddings", R"({"model":"fake","input":""})"), 400)["param"], "input");
  EXPECT_EQ(expect_error(post("/v1/embeddings", R"({"model":"fake","input":[]})"), 400)["param"], "input");
  EXPECT_EQ(expect_error(post("/v1/embeddings", R"({"model":"fake","input":{"a":1}})"), 400)["param"], "input");
  auto oov = expect_error(post("/v1/embeddings", R"({"model":"fake","input":[[101,99999999]]})"), 400);
  EXPECT_NE(oov["message"].get<std::string>().find("input[0][1]"), std::string::npos) << oov;
  auto many = expect_error(post("/v1/embeddings", json{{"model", "fake"}, {"input", std::vector<std::string>(17, "a")}}.dump()), 400);
  EXPECT_NE(many["message"].get<std::string>().find("at most 16"), std::string::npos);
  std::string long_text;
  for (int i = 0; i < 80; ++i) long_text += "word ";
  auto too_long = expect_error(post("/v1/embeddings", json{{"model", "fake"}, {"input", {"ok", long_text}}}.dump()), 400);
  EXPECT_NE(too_long["message"].get<std::string>().find("input[1] has 82 tokens"), std::string::npos) << too_long;
  EXPECT_NE(too_long["message"].get<std::string>().find("64"), std::string::npos);
  auto truncated = post("/v1/embeddings", json{{"model", "fake"}, {"input", long_text}, {"truncate_prompt_tokens", 10}}.dump());
  ASSERT_EQ(truncated->status, 200) << truncated->body;
  EXPECT_EQ(json::parse(truncated->body)["usage"]["prompt_tokens"], 10);
  auto dims = expect_error(post("/v1/embeddings", R"({"model":"plain","input":"x","dimensions":4})"), 400);
  EXPECT_NE(dims["message"].get<std::string>().find("'plain' does not support dimensions"), std::string::npos);
  auto bad_dims = expect_error(post("/v1/embeddings", R"({"model":"fake","input":"x","dimensions":3})"), 400);
  EXPECT_NE(bad_dims["message"].get<std::string>().find("2, 4, 8"), std::string::npos) << bad_dims;

  // Failures inside the model: an error result (400 from its code) and an exception (500).
  auto failed = expect_error(post("/v1/embeddings", R"({"model":"fake","input":[[101,666,102]]})"), 400);
  EXPECT_NE(failed["message"].get<std::string>().find("666"), std::string::npos);
  auto thrown = expect_error(post("/v1/embeddings", R"({"model":"fake","input":[[101,777,102]]})"), 500);
  EXPECT_EQ(thrown["type"], "server_error");

  EXPECT_EQ(client().Get("/health")->status, 200);
  EXPECT_EQ(post("/v1/embeddings", R"({"model":"fake","input":"still fine"})")->status, 200);
}

// More requests wait for one batch than any fixed HTTP thread pool would hold, and all succeed.
// The defaults a public endpoint runs with: a JSON body up to 2 MiB is served, one byte more is refused with
// 413 naming the limit and the flag; a 60 MB body is refused before any parsing.
TEST_F(HttpServerTest, DefaultJsonBodyLimitIsTwoMebibytes) {
  start(nullptr, /*small_limits=*/false);
  const std::string json_body = R"({"model":"fake","input":"hello"})";
  const std::size_t limit = 2u << 20;
  std::string at_limit = json_body + std::string(limit - json_body.size(), ' ');
  ASSERT_EQ(at_limit.size(), limit);
  auto ok = post("/v1/embeddings", at_limit);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto over = expect_error(post("/v1/embeddings", at_limit + " "), 413);
  EXPECT_EQ(over["code"], "body_too_large");
  EXPECT_NE(over["message"].get<std::string>().find(std::to_string(limit)), std::string::npos) << over;
  EXPECT_NE(over["message"].get<std::string>().find("--max-json-body-bytes"), std::string::npos) << over;
  auto huge = expect_error(post("/v1/embeddings", std::string(60u * 1000u * 1000u, ' ')), 413);
  EXPECT_EQ(huge["code"], "body_too_large");
  EXPECT_EQ(client().Get("/health")->status, 200);
}

TEST_F(HttpServerTest, ManyRequestsWaitForABatchBeyondTheHttpThreadCount) {
  auto gate = std::make_shared<Gate>();
  start(gate);
  std::thread first([&] { post("/v1/embeddings", R"({"model":"fake","input":[[1]]})"); });
  gate->await_waiters(1);  // the device worker is busy, so everything below queues
  constexpr int kRequests = 200;  // httplib's default pool has max(8, cores - 1) threads
  std::vector<std::thread> clients;
  std::atomic<int> ok{0};
  for (int i = 0; i < kRequests; ++i) {
    clients.emplace_back([&, i] {
      auto r = post("/v1/embeddings", json{{"model", "fake"}, {"input", {{101, 1000 + i, 102}}}}.dump());
      if (r && r->status == 200) {
        auto v = json::parse(r->body)["data"][0]["embedding"].get<std::vector<float>>();
        auto expect = fathom::testing::fake_embedding({101, 1000 + i, 102}, 8);
        engine::finish_embedding(expect, std::nullopt, false);
        if (v == expect) ok++;
      } else if (i % 20 == 0) {
        ADD_FAILURE() << "request " << i << ": " << (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error()));
      }
    });
  }
  auto scheduler = manager_.find("fake")->embed_scheduler;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (scheduler->stats().queued < static_cast<std::size_t>(kRequests) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(scheduler->stats().queued, static_cast<std::size_t>(kRequests));
  gate->open();
  for (auto& t : clients) t.join();
  first.join();
  EXPECT_EQ(ok.load(), kRequests);
  EXPECT_GE(scheduler->stats().largest_batch, 100u) << "waiting requests were not batched together";
}

// Keep-alive requests answer in well under Linux's 40 ms delayed ACK: the server disables Nagle's algorithm
// (httplib sends a response's headers and body in separate writes, so with Nagle every response's body
// waited for the client's delayed ACK of its headers; a 256-client benchmark measured 48 ms per request).
TEST_F(HttpServerTest, KeepAliveRequestsAreNotDelayedByNagle) {
  start();
  auto c = client();
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // the client side sends its request in one piece too
  std::vector<double> ms;
  for (int i = 0; i < 21; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.Post("/v1/embeddings", R"({"model":"plain","input":[[101,7592,102]]})", "application/json");
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
  }
  std::sort(ms.begin(), ms.end());
  EXPECT_LT(ms[ms.size() / 2], 20.0) << "median keep-alive request took " << ms[ms.size() / 2] << " ms";
}

}  // namespace
}  // namespace fathom::server
