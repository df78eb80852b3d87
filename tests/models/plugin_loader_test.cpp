// The plugin loader's contract: every failure names the plugin's path and leaves the registry unchanged;
// a good plugin's architectures are registered with the plugin as their source.
#include <gtest/gtest.h>

#include <filesystem>

#include "models/plugin_api.h"
#include "models/plugin_loader.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

std::string abs(const std::string& p) { return std::filesystem::absolute(p).lexically_normal().string(); }

// Loads `path` into an empty registry and expects `code` with the path and `fragment` in the message.
void expect_failure(const std::string& path, ErrorCode code, const std::string& fragment) {
  Registry registry;
  auto r = load_plugin(path, registry);
  ASSERT_FALSE(r.ok()) << path;
  EXPECT_EQ(r.error().code, code) << r.error().message;
  EXPECT_NE(r.error().message.find(abs(path)), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find(fragment), std::string::npos) << r.error().message;
  EXPECT_TRUE(registry.architectures().empty());
}

TEST(PluginLoader, MissingFile) {
  expect_failure("/nonexistent/dir/libnothing.so", ErrorCode::kNotFound, "file not found");
}

TEST(PluginLoader, NotASharedLibrary) {
  // A file that exists but is JSON: dlopen fails and its message is passed on.
  expect_failure(testing::fixture("models/bert-mean-norm/config.json").string(), ErrorCode::kLoadFailed,
                 "cannot load the shared library");
}

TEST(PluginLoader, Directory) {
  expect_failure(testing::fixture("models").string(), ErrorCode::kLoadFailed, "is a directory");
}

TEST(PluginLoader, SharedLibraryWithoutEntryPoints) {
  expect_failure(FATHOM_TEST_NOT_A_PLUGIN, ErrorCode::kLoadFailed, "not a fathom plugin");
}

TEST(PluginLoader, VersionMismatch) {
  const std::string expected = "built for plugin API version " + std::to_string(FATHOM_PLUGIN_API_VERSION + 100) +
                               ", but this fathom provides version " + std::to_string(FATHOM_PLUGIN_API_VERSION);
  expect_failure(FATHOM_TEST_PLUGIN_VERSION_MISMATCH, ErrorCode::kLoadFailed, expected);
}

TEST(PluginLoader, RegistrationFailsWithMessage) {
  expect_failure(FATHOM_TEST_PLUGIN_FAILING, ErrorCode::kLoadFailed,
                 "fathom_register_plugin returned 3: the test plugin refuses to register");
}

TEST(PluginLoader, RegistrationThrows) {
  expect_failure(FATHOM_TEST_PLUGIN_THROWING, ErrorCode::kLoadFailed, "threw: the test plugin throws");
}

TEST(PluginLoader, InvalidArchitecture) {
  expect_failure(FATHOM_TEST_PLUGIN_INVALID, ErrorCode::kInvalidArgument, "architecture 'test-arch' has no load function");
}

TEST(PluginLoader, RegistersNothing) {
  expect_failure(FATHOM_TEST_PLUGIN_NOTHING, ErrorCode::kLoadFailed, "registered no architecture");
}

#ifdef FATHOM_FUNASR_CTC_PLUGIN
TEST(PluginLoader, RegistersWithSourceAndRejectsDuplicates) {
  Registry registry;
  auto first = load_plugin(FATHOM_FUNASR_CTC_PLUGIN, registry);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->path.string(), abs(FATHOM_FUNASR_CTC_PLUGIN));
  ASSERT_EQ(first->architectures, std::vector<std::string>{"funasr-ctc"});
  ASSERT_EQ(registry.architectures().size(), 1u);
  const ModelInfo& info = registry.architectures()[0]->info;
  EXPECT_EQ(info.source, abs(FATHOM_FUNASR_CTC_PLUGIN));
  EXPECT_EQ(info.hf_architectures, std::vector<std::string>{"FunASRCTCModel"});
  ASSERT_EQ(info.tasks.size(), 1u);
  EXPECT_EQ(info.tasks[0], Task::kTranscribe);

  // The config.json of the fixture now matches the plugin's architecture.
  auto match = registry.match(testing::fixture("models/funasr-ctc-random"));
  ASSERT_TRUE(match.ok()) << match.error().message;
  EXPECT_EQ(match->matched_on, "architectures[0] = FunASRCTCModel");

  // Loading it again registers the same names twice: refused, naming both sides, registry unchanged.
  auto second = load_plugin(FATHOM_FUNASR_CTC_PLUGIN, registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(second.error().message.find("plugin " + abs(FATHOM_FUNASR_CTC_PLUGIN)), std::string::npos);
  EXPECT_NE(second.error().message.find("'FunASRCTCModel' of 'funasr-ctc' is already registered by 'funasr-ctc'"),
            std::string::npos)
      << second.error().message;
  EXPECT_EQ(registry.architectures().size(), 1u);

  // load_plugins stops at the first failure and names it.
  Registry other;
  auto many = load_plugins({FATHOM_FUNASR_CTC_PLUGIN, FATHOM_TEST_PLUGIN_FAILING}, other);
  ASSERT_FALSE(many.ok());
  EXPECT_NE(many.error().message.find(abs(FATHOM_TEST_PLUGIN_FAILING)), std::string::npos);
  EXPECT_EQ(other.architectures().size(), 1u);
}
#endif

}  // namespace
}  // namespace fathom::models
