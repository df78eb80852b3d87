// Server pieces that need no model: request parsing, base64, error shapes, the connection queue.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "formats/tokenizer/tokenizer.h"
#include "server/connection_queue.h"
#include "server/embeddings_request.h"
#include "server/http_errors.h"
#include "server/routes_embeddings.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

using nlohmann::json;

Error parse_error(const json& body, std::size_t max_inputs = 2048) {
  auto r = parse_embeddings_request(body, max_inputs);
  EXPECT_FALSE(r.ok()) << body.dump();
  return r.ok() ? Error{} : r.error();
}

TEST(EmbeddingsRequest, AcceptsTheFourInputShapes) {
  auto a = parse_embeddings_request(json{{"model", "m"}, {"input", "hi"}}, 10);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->single);
  EXPECT_EQ(a->texts, (std::vector<std::string>{"hi"}));
  auto b = parse_embeddings_request(json{{"model", "m"}, {"input", {"a", "b"}}}, 10);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->texts.size(), 2u);
  EXPECT_FALSE(b->single);
  auto c = parse_embeddings_request(json{{"model", "m"}, {"input", {101, 7592, 102}}}, 10);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->token_input);
  EXPECT_EQ(c->token_ids, (std::vector<std::vector<int64_t>>{{101, 7592, 102}}));
  auto d = parse_embeddings_request(json::parse(R"({"model":"m","input":[[1,2],[3]],"encoding_format":"base64",
      "dimensions":8,"truncate_prompt_tokens":-1,"normalize":false,"user":"u"})"), 10);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->token_ids.size(), 2u);
  EXPECT_TRUE(d->base64);
  EXPECT_EQ(d->dimensions, 8);
  EXPECT_EQ(d->truncate_prompt_tokens, -1);
  EXPECT_EQ(d->normalize, false);
}

TEST(EmbeddingsRequest, RejectsBadInputsNamingTheParameter) {
  EXPECT_EQ(parse_error(json{{"input", "x"}}).param, "model");
  EXPECT_EQ(parse_error(json{{"model", 3}, {"input", "x"}}).param, "model");
  auto empty = parse_error(json{{"model", "m"}, {"input", ""}});
  EXPECT_EQ(empty.param, "input");
  EXPECT_NE(empty.message.find("empty string"), std::string::npos);
  EXPECT_NE(parse_error(json{{"model", "m"}, {"input", json::array()}}).message.find("empty array"), std::string::npos);
  EXPECT_NE(parse_error(json{{"model", "m"}, {"input", {"a", ""}}}).message.find("input[1]"), std::string::npos);
  EXPECT_NE(parse_error(json{{"model", "m"}, {"input", {"a", 1}}}).message.find("input[1]"), std::string::npos);
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", 5}}).param, "input");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", {1.5, 2}}}).param, "input");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", {json::array(), {1}}}}).param, "input");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", {{1}, "a"}}}).param, "input");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", {true}}}).param, "input");
  auto many = parse_error(json{{"model", "m"}, {"input", {"a", "b", "c"}}}, 2);
  EXPECT_NE(many.message.find("at most 2"), std::string::npos) << many.message;
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"encoding_format", "hex"}}).param, "encoding_format");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"dimensions", "8"}}).param, "dimensions");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"dimensions", 0}}).param, "dimensions");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"truncate_prompt_tokens", 0}}).param,
            "truncate_prompt_tokens");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"normalize", "yes"}}).param, "normalize");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"user", 3}}).param, "user");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"prompt_name", 3}}).param, "prompt_name");
  EXPECT_EQ(parse_error(json{{"model", "m"}, {"input", "a"}, {"prompt_name", ""}}).param, "prompt_name");
}

// prompt_name prepends the model's declared prompt text before tokenization; the default prompt applies when
// a request names none; undeclared names and prompts on token-id inputs are errors naming prompt_name.
TEST(EmbeddingsRequest, EmbeddingTypeNamesATokenOutputTheModelMustHave) {
  auto tok = formats::Tokenizer::load(testing::fixture("models/xlmr-unigram-mean/tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  engine::EmbedderFacts facts;
  facts.tokenizer = tok.value().get();
  facts.max_input_tokens = 64;
  facts.embedding_dim = 32;
  auto parse = [](json body) { return parse_embeddings_request(body, 10); };
  auto dense = parse(json{{"model", "m"}, {"input", "x"}, {"embedding_type", "dense"}});
  ASSERT_TRUE(dense.ok());
  EXPECT_FALSE(dense->token_output.has_value());
  auto sparse = parse(json{{"model", "m"}, {"input", "x"}, {"embedding_type", "sparse"}});
  ASSERT_TRUE(sparse.ok());
  EXPECT_EQ(sparse->token_output, models::TokenOutput::kSparse);
  auto colbert = parse(json{{"model", "m"}, {"input", "x"}, {"embedding_type", "colbert"}});
  ASSERT_TRUE(colbert.ok());
  EXPECT_EQ(colbert->token_output, models::TokenOutput::kColbert);
  for (const json& bad : {json{{"model", "m"}, {"input", "x"}, {"embedding_type", "Sparse"}},
                          json{{"model", "m"}, {"input", "x"}, {"embedding_type", 1}}}) {
    auto r = parse(bad);
    ASSERT_FALSE(r.ok()) << bad.dump();
    EXPECT_EQ(r.error().param, "embedding_type");
  }
  auto b64 = parse(json{{"model", "m"}, {"input", "x"}, {"embedding_type", "sparse"}, {"encoding_format", "base64"}});
  ASSERT_FALSE(b64.ok());
  EXPECT_EQ(b64.error().param, "encoding_format");
  auto dims = parse(json{{"model", "m"}, {"input", "x"}, {"embedding_type", "colbert"}, {"dimensions", 8}});
  ASSERT_FALSE(dims.ok());
  EXPECT_EQ(dims.error().param, "dimensions");
  // The model must have the output: refused naming the types it has, accepted once it does.
  auto missing = tokenize_inputs(sparse.value(), facts);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().param, "embedding_type");
  EXPECT_NE(missing.error().message.find("its embedding types: dense)"), std::string::npos) << missing.error().message;
  facts.token_outputs = {models::TokenOutput::kSparse, models::TokenOutput::kColbert};
  EXPECT_TRUE(tokenize_inputs(sparse.value(), facts).ok());
  EXPECT_TRUE(tokenize_inputs(colbert.value(), facts).ok());
}

TEST(EmbeddingsRequest, PromptNamePrependsTheDeclaredPrompt) {
  auto tok = formats::Tokenizer::load(testing::fixture("models/qwen3-embed-f32/tokenizer.json"));
  ASSERT_TRUE(tok.ok()) << tok.error().message;
  engine::EmbedderFacts facts;
  facts.tokenizer = tok.value().get();
  facts.max_input_tokens = 96;
  facts.embedding_dim = 64;
  facts.prompts = {{"document", ""}, {"query", "Instruct: find\nQuery:"}};
  auto encode = [&](const std::string& text) { return tok.value()->encode(text).value(); };
  auto with = [&](json body) {
    auto r = parse_embeddings_request(body, 10);
    EXPECT_TRUE(r.ok());
    return tokenize_inputs(r.value(), facts);
  };
  auto q = with(json{{"model", "m"}, {"input", {"capital of France", "b"}}, {"prompt_name", "query"}});
  ASSERT_TRUE(q.ok()) << q.error().message;
  EXPECT_EQ(q->sequences[0], encode("Instruct: find\nQuery:capital of France"));
  EXPECT_EQ(q->sequences[1], encode("Instruct: find\nQuery:b"));
  EXPECT_EQ(q->prompt_tokens, q->sequences[0].size() + q->sequences[1].size());
  auto d = with(json{{"model", "m"}, {"input", "capital of France"}, {"prompt_name", "document"}});
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->sequences[0], encode("capital of France"));
  auto none = with(json{{"model", "m"}, {"input", "capital of France"}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->sequences[0], encode("capital of France"));
  facts.default_prompt_name = "query";
  auto by_default = with(json{{"model", "m"}, {"input", "capital of France"}});
  ASSERT_TRUE(by_default.ok());
  EXPECT_EQ(by_default->sequences[0], encode("Instruct: find\nQuery:capital of France"));
  auto unknown = with(json{{"model", "m"}, {"input", "x"}, {"prompt_name", "passage"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().param, "prompt_name");
  EXPECT_NE(unknown.error().message.find("its prompts: document, query"), std::string::npos) << unknown.error().message;
  auto ids = with(json{{"model", "m"}, {"input", {1, 2, 3}}, {"prompt_name", "query"}});
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.error().param, "prompt_name");
  auto ids_default = with(json{{"model", "m"}, {"input", {1, 2, 3}}});  // the default prompt never touches ids
  ASSERT_TRUE(ids_default.ok());
  EXPECT_EQ(ids_default->sequences[0], (std::vector<int32_t>{1, 2, 3}));
  facts.prompts.clear();
  facts.default_prompt_name.clear();
  auto no_prompts = with(json{{"model", "m"}, {"input", "x"}, {"prompt_name", "query"}});
  ASSERT_FALSE(no_prompts.ok());
  EXPECT_NE(no_prompts.error().message.find("declares no prompts"), std::string::npos);
}

TEST(Base64, MatchesKnownEncodings) {
  auto enc = [](const std::string& s) { return base64_encode(reinterpret_cast<const unsigned char*>(s.data()), s.size()); };
  EXPECT_EQ(enc(""), "");
  EXPECT_EQ(enc("f"), "Zg==");
  EXPECT_EQ(enc("fo"), "Zm8=");
  EXPECT_EQ(enc("foo"), "Zm9v");
  EXPECT_EQ(enc("foobar"), "Zm9vYmFy");
  float one = 1.0f;  // 0x3f800000 little-endian: 00 00 80 3f
  EXPECT_EQ(base64_encode(reinterpret_cast<const unsigned char*>(&one), 4), "AACAPw==");
}

TEST(FloatArray, RoundTripsShortest) {
  std::string out;
  append_float_array(out, {0.1f, -2.0f, 1e-8f});
  EXPECT_EQ(out, "[0.1,-2,1e-08]");
}

TEST(HttpErrors, OpenAiShape) {
  auto e = to_api_error(make_error(ErrorCode::kOverloaded, "busy", "input"));
  EXPECT_EQ(e.status, 429);
  auto j = error_json(api_error(400, "bad", "input", "x"));
  EXPECT_EQ(j["error"]["message"], "bad");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "input");
  EXPECT_EQ(j["error"]["code"], "x");
  auto k = error_json(api_error(500, "boom"));
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_EQ(k["error"]["type"], "server_error");
}

// Many connections must be able to wait at once: far more than any fixed pool would hold.
TEST(ConnectionQueue, RunsManyBlockedTasksAtOnce) {
  ConnectionQueue queue(1024, 100);
  constexpr int kTasks = 300;
  std::mutex mu;
  std::condition_variable cv;
  int started = 0;
  bool release = false;
  std::atomic<int> done{0};
  for (int i = 0; i < kTasks; ++i) {
    queue.enqueue([&] {
      std::unique_lock lock(mu);
      started++;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
      done++;
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return started == kTasks; }))
        << "only " << started << " of " << kTasks << " tasks ran concurrently";
    release = true;
  }
  cv.notify_all();
  queue.shutdown();
  EXPECT_EQ(done.load(), kTasks);
  EXPECT_GE(queue.peak_threads(), static_cast<std::size_t>(kTasks));
}

TEST(ConnectionQueue, QueuesBeyondTheLimitAndReusesThreads) {
  ConnectionQueue queue(4, 50);
  std::atomic<int> running{0}, most{0}, done{0};
  for (int i = 0; i < 40; ++i) {
    queue.enqueue([&] {
      int now = ++running;
      int prev = most.load();
      while (now > prev && !most.compare_exchange_weak(prev, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      --running;
      ++done;
    });
  }
  queue.shutdown();
  EXPECT_EQ(done.load(), 40);
  EXPECT_LE(most.load(), 4);
  EXPECT_LE(queue.peak_threads(), 4u);
}

}  // namespace
}  // namespace fathom::server
