// /v1/embeddings over HTTP for one fixture of each encoder family (MPNet, NomicBERT, GTE, ModernBERT):
// text in, the reference embeddings out (the server tokenizes with the model directory's tokenizer.json),
// through the same engine and routes as BERT.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::server {
namespace {

using nlohmann::json;

const char* const kModels[] = {"mpnet-mean-norm", "nomic-mean-norm", "gte-ntk-cls-norm", "modernbert-mean"};

class EncoderHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kModels)
      ASSERT_TRUE(manager_.load(name, fathom::testing::fixture(std::string("models/") + name), models::LoadOptions{}).ok())
          << name;
    ASSERT_NO_FATAL_FAILURE(server_.start(ServerOptions{}, manager_));
  }
  void TearDown() override {
    server_.stop();
    manager_.shutdown();
  }
  engine::ModelManager manager_;
  fathom::testing::HttpTestServer server_;
};

TEST_F(EncoderHttp, EmbeddingsOfTextMatchTheReference) {
  for (const char* name : kModels) {
    std::ifstream in(fathom::testing::fixture(std::string("models/") + name + ".reference.json"));
    const json ref = json::parse(in);
    std::vector<std::string> texts;
    for (std::size_t i = 0; i < 4; ++i) texts.push_back(ref["cases"][i]["text"].get<std::string>());
    auto r = server_.client(60).Post("/v1/embeddings", json{{"model", name}, {"input", texts}}.dump(), "application/json");
    ASSERT_TRUE(r) << name;
    ASSERT_EQ(r->status, 200) << name << ": " << r->body;
    const json body = json::parse(r->body);
    ASSERT_EQ(body["data"].size(), texts.size()) << name;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      const auto got = body["data"][i]["embedding"].get<std::vector<float>>();
      const auto want = ref["cases"][i]["embedding"].get<std::vector<float>>();
      ASSERT_EQ(got.size(), want.size()) << name;
      double dot = 0, ng = 0, nw = 0;
      for (std::size_t k = 0; k < got.size(); ++k) {
        dot += static_cast<double>(got[k]) * want[k];
        ng += static_cast<double>(got[k]) * got[k];
        nw += static_cast<double>(want[k]) * want[k];
      }
      EXPECT_GE(dot / std::sqrt(ng * nw), 0.99999) << name << " text " << i;
    }
  }
}

}  // namespace
}  // namespace fathom::server
