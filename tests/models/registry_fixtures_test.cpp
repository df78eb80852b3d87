// Every built-in architecture must have a fixture model that the registry matches to it (and loads).
#include <gtest/gtest.h>

#include <set>

#include "models/registry.h"
#include "support/paths.h"

namespace fathom::models {
namespace {

TEST(RegistryFixtures, EveryBuiltInArchitectureHasAFixtureModel) {
  std::map<std::string, std::vector<std::string>> fixtures_by_arch;  // architecture name -> fixture dirs
  for (const auto& entry : std::filesystem::directory_iterator(testing::fixture("models"))) {
    if (!entry.is_directory() || !std::filesystem::exists(entry.path() / "config.json")) continue;
    auto m = Registry::global().match(entry.path());
    if (m.ok()) fixtures_by_arch[m->architecture->info.name].push_back(entry.path().filename().string());
  }
  ASSERT_FALSE(Registry::global().architectures().empty());
  for (const auto& a : Registry::global().architectures()) {
    if (a->info.source != "built-in") continue;
    auto it = fixtures_by_arch.find(a->info.name);
    EXPECT_TRUE(it != fixtures_by_arch.end())
        << "built-in architecture '" << a->info.name << "' has no fixture under tests/fixtures/models/";
    if (it == fixtures_by_arch.end()) continue;
    // The fixture must load on a device the architecture supports, with its declared interfaces.
    if (a->info.devices.empty() || a->info.devices[0] != DeviceKind::kCpu) continue;
    auto loaded = Registry::global().load(testing::fixture("models/" + it->second[0]), LoadOptions{});
    EXPECT_TRUE(loaded.ok()) << it->second[0] << ": " << (loaded.ok() ? "" : loaded.error().message);
  }
}

}  // namespace
}  // namespace fathom::models
