// config.json's Matryoshka declaration (is_matryoshka / matryoshka_dimensions) reaches the embedder of every
// family that reads it: the BERT family, the encoder runtime (ModernBERT) and the decoder embedders
// (Qwen3-Embedding). Each fixture is copied into a temporary directory whose config.json is rewritten.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "support/paths.h"
#include "support/temp_dir.h"

namespace fathom::models {
namespace {

// A copy of fixture `name` whose config.json gets `patch` merged in.
struct PatchedFixture {
  testing::TempDir dir{"fathom_matryoshka"};
  PatchedFixture(const std::string& name, const nlohmann::json& patch) {
    std::filesystem::copy(testing::fixture("models/" + name), dir.path(), std::filesystem::copy_options::recursive);
    std::ifstream in(dir.path() / "config.json");
    nlohmann::json config = nlohmann::json::parse(in);
    config.merge_patch(patch);
    std::ofstream(dir.path() / "config.json") << config.dump(1);
  }
};

class Matryoshka : public ::testing::TestWithParam<std::string> {};

TEST_P(Matryoshka, ConfigDeclarationReachesTheEmbedder) {
  const std::string name = GetParam();
  {  // as committed: nothing declared, nothing offered
    auto m = Registry::global().load(testing::fixture("models/" + name), LoadOptions{});
    ASSERT_TRUE(m.ok()) << m.error().message;
    Embedder* e = (*m)->as_embedder();
    ASSERT_NE(e, nullptr);
    EXPECT_FALSE(e->supports_matryoshka()) << name;
    EXPECT_TRUE(e->matryoshka_dimensions().empty()) << name;
  }
  int hidden = 0;
  {  // is_matryoshka: any size up to the hidden size
    PatchedFixture f(name, {{"is_matryoshka", true}});
    auto m = Registry::global().load(f.dir.path(), LoadOptions{});
    ASSERT_TRUE(m.ok()) << m.error().message;
    Embedder* e = (*m)->as_embedder();
    hidden = e->embedding_dim();
    EXPECT_TRUE(e->supports_matryoshka()) << name;
    EXPECT_EQ(e->matryoshka_dimensions(), std::vector<int>{hidden}) << name;
  }
  {  // a declared list wins
    PatchedFixture f(name, {{"matryoshka_dimensions", {hidden / 2, 8}}});
    auto m = Registry::global().load(f.dir.path(), LoadOptions{});
    ASSERT_TRUE(m.ok()) << m.error().message;
    EXPECT_TRUE((*m)->as_embedder()->supports_matryoshka());
    EXPECT_EQ((*m)->as_embedder()->matryoshka_dimensions(), (std::vector<int>{hidden / 2, 8})) << name;
  }
  for (const nlohmann::json& bad : {nlohmann::json{{"matryoshka_dimensions", {hidden + 1}}},
                                    nlohmann::json{{"matryoshka_dimensions", "64"}},
                                    nlohmann::json{{"matryoshka_dimensions", {0}}}}) {
    PatchedFixture f(name, bad);
    auto m = Registry::global().load(f.dir.path(), LoadOptions{});
    ASSERT_FALSE(m.ok()) << name << " accepted " << bad.dump();
    EXPECT_EQ(m.error().code, ErrorCode::kLoadFailed) << m.error().message;
    EXPECT_NE(m.error().message.find("matryoshka_dimensions"), std::string::npos) << m.error().message;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, Matryoshka, ::testing::Values("roberta-cls", "modernbert-mean", "qwen3-embed-f32"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s)
                             if (c == '-') c = '_';
                           return s;
                         });

}  // namespace
}  // namespace fathom::models
