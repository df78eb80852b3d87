// Several models in one server process under concurrent mixed load: three embedding models of different
// architectures (BERT mean+normalize f32, RoBERTa CLS f32, XLM-R max bf16) and a Whisper model, 32 client
// threads at once, every answer checked against its fixture's reference (embedding cosine, transcription
// text = transformers' generate() tokens decoded). While that traffic runs, the admin API loads a fourth
// embedding model, serves it, unloads it with a request in flight (which finishes) and refuses a model over
// its memory budget; afterwards the unloaded model answers 404 model_not_found and the others never noticed.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "formats/tokenizer/tokenizer.h"
#include "server/server.h"
#include "support/http_test_server.h"
#include "support/paths.h"
#include "support/vectors.h"

namespace fathom::server {
namespace {

using nlohmann::json;
using fathom::testing::cosine;
using Clock = std::chrono::steady_clock;

constexpr double kMinCosine = 0.9999;
constexpr const char* kAdminToken = "multi-model-token";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Little-endian float32 values of a base64 string (the OpenAI base64 embedding encoding).
std::vector<float> decode_base64_floats(const std::string& s) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string bytes;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : s) {
    int v = value(c);
    if (v < 0) continue;  // '=' padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      bytes.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
  return out;
}

// One embedding fixture: the texts that fit its max_seq_length and their reference vectors.
struct EmbedFixture {
  std::string name;
  std::vector<std::string> texts;
  std::vector<std::vector<float>> embeddings;
};

EmbedFixture load_embed_fixture(const std::string& name) {
  EmbedFixture f{name, {}, {}};
  json ref = json::parse(read_file(fathom::testing::fixture("models/" + name + ".reference.json")));
  for (const auto& c : ref["cases"]) {
    if (c["truncated"].get<bool>()) continue;
    f.texts.push_back(c["text"].get<std::string>());
    f.embeddings.push_back(c["embedding"].get<std::vector<float>>());
  }
  return f;
}

// What one request got: "" when it matched its reference, otherwise why not.
struct Outcome {
  std::string model;
  int status = 0;
  std::string code;           // error.code when status != 200
  std::string problem;        // set when a 200 answer did not match its reference
  Clock::time_point started;  // when the request was sent
};

class MultiModelServer : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"bert-mean-norm", "roberta-cls", "xlmr-bf16-max"}) {
      ASSERT_TRUE(manager_.load(name, fathom::testing::fixture(std::string("models/") + name), load_options()).ok()) << name;
      fixtures_[name] = load_embed_fixture(name);
    }
    fixtures_["extra"] = load_embed_fixture("bert-mlm-sharded-lasttoken");
    const auto whisper_dir = fathom::testing::fixture("models/whisper-tiny-random-f32");
    ASSERT_TRUE(manager_.load("whisper", whisper_dir, load_options()).ok());
    jfk_ = read_file(fathom::testing::shared_dir() / "assets/whisper/jfk.wav");
    ASSERT_GT(jfk_.size(), 1000u);
    json whisper_ref = json::parse(read_file(fathom::testing::fixture("models/whisper-tiny-random-f32.reference.json")));
    auto tokenizer = formats::Tokenizer::load(whisper_dir / "tokenizer.json");
    ASSERT_TRUE(tokenizer.ok());
    std::vector<int32_t> text_tokens;
    for (auto t : whisper_ref["generate"]["transcribe_en"]["tokens"].get<std::vector<int32_t>>()) {
      if (t < 50257) text_tokens.push_back(t);  // below the special tokens
    }
    auto text = tokenizer.value()->decode(text_tokens, true);
    ASSERT_TRUE(text.ok());
    whisper_text_ = text.value();
    ASSERT_FALSE(whisper_text_.empty());

    ServerOptions options;
    options.admin_token = kAdminToken;
    options.default_load = load_options();
    ASSERT_NO_FATAL_FAILURE(server_.start(options, manager_));
  }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  static models::LoadOptions load_options() {
    models::LoadOptions load;
    load.max_batch_tokens = 512;  // small batches: many steps, so the models' steps interleave on the worker
    return load;
  }

  // Records `r`'s status (or why there was none) in `o` and, for an error answer, its OpenAI error code;
  // true for a 200, whose parsed body is left in `j`.
  static bool answered_200(const httplib::Result& r, Outcome& o, json& j) {
    if (!r) {
      o.problem = "no response: " + httplib::to_string(r.error());
      return false;
    }
    o.status = r->status;
    j = json::parse(r->body, nullptr, false);
    if (r->status == 200) return true;
    if (j.is_object() && j.contains("error") && j["error"]["code"].is_string()) o.code = j["error"]["code"];
    return false;
  }

  // Sends `count` reference texts of `model` (starting at case `first`) and checks the answer.
  Outcome embed(httplib::Client& client, const std::string& model, std::size_t first, std::size_t count, bool base64) {
    const EmbedFixture& f = fixtures_.at(model);
    json input = json::array();
    for (std::size_t i = 0; i < count; ++i) input.push_back(f.texts[(first + i) % f.texts.size()]);
    json body{{"model", model}, {"input", input}, {"encoding_format", base64 ? "base64" : "float"}};
    Outcome o{model, 0, {}, {}, Clock::now()};
    json j;
    if (!answered_200(client.Post("/v1/embeddings", body.dump(), "application/json"), o, j)) return o;
    if (!j.is_object() || !j["data"].is_array() || j["data"].size() != count) {
      o.problem = "malformed answer: " + j.dump().substr(0, 200);
      return o;
    }
    for (std::size_t i = 0; i < count; ++i) {
      const auto& e = j["data"][i]["embedding"];
      std::vector<float> v = base64 ? decode_base64_floats(e.get<std::string>()) : e.get<std::vector<float>>();
      const double c = cosine(v, f.embeddings[(first + i) % f.texts.size()]);
      if (!(c >= kMinCosine)) {
        o.problem = model + " input " + std::to_string(i) + ": cosine " + std::to_string(c) + " to its reference";
        return o;
      }
    }
    return o;
  }

  Outcome transcribe(httplib::Client& client) {
    httplib::MultipartFormDataItems form{{"file", jfk_, "jfk.wav", "audio/wav"},
                                         {"model", "whisper", "", ""},
                                         {"language", "en", "", ""},
                                         {"max_completion_tokens", "24", "", ""}};
    Outcome o{"whisper", 0, {}, {}, Clock::now()};
    json j;
    if (!answered_200(client.Post("/v1/audio/transcriptions", form), o, j)) return o;
    if (!j.is_object() || !j["text"].is_string() || j["text"] != whisper_text_) {
      o.problem = "transcription differs from the reference: " + j.dump().substr(0, 200);
    }
    return o;
  }

  httplib::Result admin_post(const json& body) {
    return server_.client(60).Post("/v1/admin/models", {{"Authorization", std::string("Bearer ") + kAdminToken}},
                                   body.dump(), "application/json");
  }
  httplib::Result admin_delete(const std::string& name) {
    return server_.client(300).Delete(("/v1/admin/models/" + name).c_str(),
                                     {{"Authorization", std::string("Bearer ") + kAdminToken}});
  }

  engine::ModelManager manager_;
  fathom::testing::HttpTestServer server_;
  std::map<std::string, EmbedFixture> fixtures_;
  std::string jfk_;
  std::string whisper_text_;
};

TEST_F(MultiModelServer, MixedLoadMatchesFixturesWhileModelsLoadAndUnload) {
  constexpr int kClients = 32;
  constexpr int kExtraClients = 4;  // of which these send to the model loaded and unloaded at run time
  const std::vector<std::string> steady = {"bert-mean-norm", "roberta-cls", "xlmr-bf16-max", "whisper"};
  const std::string extra_dir = fathom::testing::fixture("models/bert-mlm-sharded-lasttoken").string();

  std::atomic<bool> stop{false};
  std::atomic<int> extra_answered{0};
  std::map<std::string, std::atomic<int>> steady_answered;  // keys fixed before the clients start
  for (const auto& m : steady) steady_answered[m] = 0;
  std::mutex mu;
  std::vector<Outcome> outcomes;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      auto client = server_.client(120);
      client.set_keep_alive(true);
      std::mt19937 rng(1234 + t);
      std::vector<Outcome> mine;
      for (int i = 0; !stop.load(); ++i) {
        if (t < kExtraClients) {
          mine.push_back(embed(client, "extra", rng() % 16, 1 + rng() % 3, i % 2 == 1));
          if (mine.back().status == 200 && mine.back().problem.empty()) extra_answered++;
          continue;
        }
        const std::string& model = steady[(t + i) % steady.size()];
        if (model == "whisper") mine.push_back(transcribe(client));
        else mine.push_back(embed(client, model, rng() % 16, 1 + rng() % 4, i % 2 == 1));
        if (mine.back().status == 200 && mine.back().problem.empty()) steady_answered.at(model)++;
      }
      std::lock_guard lock(mu);
      outcomes.insert(outcomes.end(), mine.begin(), mine.end());
    });
  }
  auto sleep_ms = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };

  // Load a fourth embedding model (another architecture variant: sharded BERT, last-token pooling).
  sleep_ms(300);
  auto loaded = admin_post({{"name", "extra"},
                            {"path", extra_dir},
                            {"options", {{"budget", "64MiB"}, {"priority", 2}, {"max_batch_tokens", 256}}}});
  ASSERT_TRUE(loaded);
  ASSERT_EQ(loaded->status, 200) << loaded->body;
  EXPECT_EQ(json::parse(loaded->body)["state"], "ready");

  // A model over its budget is refused with the budget named; the others keep serving.
  auto refused = admin_post({{"name", "tight"}, {"path", extra_dir}, {"options", {{"budget", 64 * 1024}}}});
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;
  json refusal = json::parse(refused->body, nullptr, false);
  EXPECT_EQ(refusal["error"]["code"], "memory_budget_exceeded") << refused->body;
  EXPECT_NE(refused->body.find("does not fit its memory budget of 0.1 MiB (65536 bytes)"), std::string::npos)
      << refused->body;
  EXPECT_EQ(admin_delete("tight")->status, 200);  // removes the failed entry

  // Let the extra model serve a while, then unload it with a large request in flight.
  for (int i = 0; i < 3000 && extra_answered.load() < 10; ++i) sleep_ms(10);
  const std::size_t kBig = 256;
  auto big = std::async(std::launch::async, [&] {
    auto client = server_.client(120);
    return embed(client, "extra", 0, kBig, false);
  });
  auto extra = manager_.find("extra");
  ASSERT_TRUE(extra);
  for (int i = 0; i < 10000 && extra->embed_scheduler->stats().queued < kBig / 2; ++i) sleep_ms(1);
  const bool big_was_queued = extra->embed_scheduler->stats().queued > 0;
  auto deleted = admin_delete("extra");
  const auto unloaded_at = Clock::now();
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->status, 200) << deleted->body;
  const Outcome big_outcome = big.get();
  EXPECT_TRUE(big_was_queued) << "the large request was not waiting when the unload began";
  EXPECT_EQ(big_outcome.status, 200) << big_outcome.code;
  EXPECT_EQ(big_outcome.problem, "");
  extra.reset();

  // Traffic continues (the extra clients now knock on a missing model) until every steady model has answered
  // a fair number of requests (Whisper on a CPU takes seconds per request while the device is shared).
  auto enough = [&] {
    for (const auto& m : steady) {
      if (steady_answered.at(m).load() < 10) return false;
    }
    return true;
  };
  sleep_ms(500);
  for (int i = 0; i < 6000 && !enough(); ++i) sleep_ms(10);
  stop = true;
  for (auto& c : clients) c.join();

  // Tally: the steady models answered every request correctly; the extra model answered correctly while
  // loaded, 404 model_not_found before its load and after its unload, and at most 503 while unloading.
  std::map<std::string, int> ok;
  int extra_after_unload = 0;
  for (const auto& o : outcomes) {
    ASSERT_EQ(o.problem, "") << o.model;
    if (o.model != "extra") {
      ASSERT_EQ(o.status, 200) << o.model << " " << o.code;
      ok[o.model]++;
      continue;
    }
    if (o.status == 200) {
      ok["extra"]++;
    } else if (o.started >= unloaded_at) {
      ASSERT_EQ(o.status, 404) << o.code;
      EXPECT_EQ(o.code, "model_not_found");
      extra_after_unload++;
    } else {
      ASSERT_TRUE(o.status == 404 || o.status == 503) << o.status << " " << o.code;
      EXPECT_TRUE(o.code == "model_not_found" || o.code == "model_not_ready" || o.code == "unavailable") << o.code;
    }
  }
  std::string tally;
  for (const auto& [m, n] : ok) tally += (tally.empty() ? "" : ", ") + m + " " + std::to_string(n);
  std::printf("answers matching their reference: %s; extra after its unload: %d x 404\n", tally.c_str(),
              extra_after_unload);
  for (const auto& m : steady) EXPECT_GE(ok[m], 10) << m << " answered too few requests";
  EXPECT_GE(ok["extra"], 10);
  EXPECT_GE(extra_after_unload, kExtraClients);

  // Afterwards: the extra model is gone, the others are ready and still answer.
  auto list = json::parse(server_.client(30).Get("/v1/models")->body)["data"];
  std::map<std::string, std::string> states;
  for (const auto& m : list) states[m["id"]] = m["state"];
  EXPECT_EQ(states, (std::map<std::string, std::string>{{"bert-mean-norm", "ready"},
                                                         {"roberta-cls", "ready"},
                                                         {"whisper", "ready"},
                                                         {"xlmr-bf16-max", "ready"}}));
  auto client = server_.client(60);
  EXPECT_EQ(embed(client, "extra", 0, 1, false).code, "model_not_found");
  for (const auto& m : steady) {
    Outcome o = m == "whisper" ? transcribe(client) : embed(client, m, 0, 8, false);
    EXPECT_EQ(o.status, 200) << m;
    EXPECT_EQ(o.problem, "") << m;
  }
}

}  // namespace
}  // namespace fathom::server
