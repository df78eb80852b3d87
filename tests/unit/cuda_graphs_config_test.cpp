// The cuda_graphs setting: [defaults] and per-model keys in the TOML file, --cuda-graphs on the command
// line, and what each model's LoadOptions end up with.
#include <gtest/gtest.h>

#include "server/server_config.h"

namespace fathom::server {
namespace {

TEST(CudaGraphsConfig, PerModelKeyOverridesTheDefault) {
  auto c = parse_config(R"(
[defaults]
cuda_graphs = false

[[models]]
name = "a"
path = "/m/a"
cuda_graphs = true

[[models]]
name = "b"
path = "/m/b"
)",
                        "f.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c.value().cuda_graphs);
  ASSERT_EQ(c.value().models.size(), 2u);
  EXPECT_EQ(c.value().models[0].cuda_graphs, std::optional<bool>(true));
  EXPECT_FALSE(c.value().models[1].cuda_graphs.has_value());
  EXPECT_TRUE(model_load_options(c.value(), c.value().models[0]).cuda_graphs);
  EXPECT_FALSE(model_load_options(c.value(), c.value().models[1]).cuda_graphs);
}

TEST(CudaGraphsConfig, DefaultIsOnAndAModelCanTurnItOff) {
  auto c = parse_config("[[models]]\nname = \"a\"\npath = \"/m/a\"\ncuda_graphs = false\n[[models]]\npath = \"/m/b\"\n",
                        "f.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c.value().cuda_graphs);
  EXPECT_FALSE(model_load_options(c.value(), c.value().models[0]).cuda_graphs);
  EXPECT_TRUE(model_load_options(c.value(), c.value().models[1]).cuda_graphs);
}

TEST(CudaGraphsConfig, WrongTypeNamesTheKey) {
  auto c = parse_config("[[models]]\npath = \"/m/a\"\ncuda_graphs = \"yes\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("models[0].cuda_graphs"), std::string::npos) << c.error().message;
  EXPECT_NE(c.error().message.find("f.toml"), std::string::npos) << c.error().message;
  auto d = parse_config("[defaults]\ncuda_graphs = 1\n", "f.toml");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("defaults.cuda_graphs"), std::string::npos) << d.error().message;
}

TEST(CudaGraphsConfig, FlagSetsTheDefaultAndMustAgreeWithTheFile) {
  CommandLineSettings off;
  off.cuda_graphs = false;
  off.models.push_back({"a", "/m/a"});
  auto c = merge_config(std::nullopt, "", off);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(model_load_options(c.value(), c.value().models[0]).cuda_graphs);

  auto file = parse_config("[defaults]\ncuda_graphs = true\n[[models]]\nname = \"a\"\npath = \"/m/a\"\ncuda_graphs = false\n",
                           "f.toml");
  ASSERT_TRUE(file.ok()) << file.error().message;
  CommandLineSettings same;
  same.cuda_graphs = true;
  auto m = merge_config(file.value(), "f.toml", same);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_FALSE(model_load_options(m.value(), m.value().models[0]).cuda_graphs);  // the model's own key wins
  auto e = merge_config(file.value(), "f.toml", off);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("--cuda-graphs false conflicts with defaults.cuda_graphs = true in f.toml"),
            std::string::npos)
      << e.error().message;
}

}  // namespace
}  // namespace fathom::server
