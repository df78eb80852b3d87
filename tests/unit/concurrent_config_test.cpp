// The concurrent setting: [defaults] and per-model keys in the TOML file, --concurrent-models on the command
// line, and what each model's LoadOptions / ServeOptions end up with.
#include <gtest/gtest.h>

#include "server/server_config.h"

namespace fathom::server {
namespace {

TEST(ConcurrentConfig, OffByDefault) {
  auto c = parse_config("[[models]]\nname = \"a\"\npath = \"/m/a\"\n", "f.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_FALSE(c.value().concurrent);
  EXPECT_FALSE(model_serve_options(c.value(), c.value().models[0]).concurrent);
  EXPECT_FALSE(model_load_options(c.value(), c.value().models[0]).concurrent);
}

TEST(ConcurrentConfig, PerModelKeyOverridesTheDefault) {
  auto c = parse_config(R"(
[defaults]
concurrent = true

[[models]]
name = "a"
path = "/m/a"
concurrent = false

[[models]]
name = "b"
path = "/m/b"
priority = 4
)",
                        "f.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(c.value().concurrent);
  ASSERT_EQ(c.value().models.size(), 2u);
  EXPECT_EQ(c.value().models[0].concurrent, std::optional<bool>(false));
  EXPECT_FALSE(c.value().models[1].concurrent.has_value());
  EXPECT_FALSE(model_serve_options(c.value(), c.value().models[0]).concurrent);
  EXPECT_FALSE(model_load_options(c.value(), c.value().models[0]).concurrent);
  EXPECT_TRUE(model_serve_options(c.value(), c.value().models[1]).concurrent);
  EXPECT_TRUE(model_load_options(c.value(), c.value().models[1]).concurrent);
  EXPECT_EQ(model_serve_options(c.value(), c.value().models[1]).priority, 4.0);
}

TEST(ConcurrentConfig, WrongTypeNamesTheKey) {
  auto c = parse_config("[[models]]\npath = \"/m/a\"\nconcurrent = \"yes\"\n", "f.toml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("models[0].concurrent"), std::string::npos) << c.error().message;
  auto d = parse_config("[defaults]\nconcurrent = 1\n", "f.toml");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.error().message.find("defaults.concurrent"), std::string::npos) << d.error().message;
}

TEST(ConcurrentConfig, FlagSetsTheDefaultAndMustAgreeWithTheFile) {
  CommandLineSettings on;
  on.concurrent = true;
  on.models.push_back({"a", "/m/a"});
  auto c = merge_config(std::nullopt, "", on);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_TRUE(model_serve_options(c.value(), c.value().models[0]).concurrent);

  auto file = parse_config("[defaults]\nconcurrent = false\n[[models]]\nname = \"a\"\npath = \"/m/a\"\n", "f.toml");
  ASSERT_TRUE(file.ok()) << file.error().message;
  auto conflict = merge_config(file.value(), "f.toml", on);
  ASSERT_FALSE(conflict.ok());
  EXPECT_NE(conflict.error().message.find("--concurrent-models"), std::string::npos) << conflict.error().message;
  EXPECT_NE(conflict.error().message.find("defaults.concurrent"), std::string::npos) << conflict.error().message;
}

}  // namespace
}  // namespace fathom::server
