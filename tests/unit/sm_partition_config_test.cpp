// max_sms (a model's SM partition on its CUDA device): the per-model TOML key, the admin API option, and
// what the model's LoadOptions end up with. Loading with it is tested in tests/engine/sm_partition_test.cpp.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/http_errors.h"
#include "server/routes_admin.h"
#include "server/server_config.h"

namespace fathom::server {
namespace {

TEST(SmPartitionConfig, PerModelKeyReachesTheLoadOptions) {
  auto c = parse_config(R"(
[[models]]
name = "heavy"
path = "/m/heavy"
max_sms = 120

[[models]]
name = "light"
path = "/m/light"
)",
                        "f.toml");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_EQ(c.value().models.size(), 2u);
  EXPECT_EQ(model_load_options(c.value(), c.value().models[0]).max_sms, 120);
  EXPECT_EQ(model_load_options(c.value(), c.value().models[1]).max_sms, 0) << "unset: every SM";
}

TEST(SmPartitionConfig, ZeroOrWrongTypeNamesTheKey) {
  for (const char* value : {"0", "-8", "\"half\"", "1.5"}) {
    auto c = parse_config(std::string("[[models]]\npath = \"/m/a\"\nmax_sms = ") + value + "\n", "f.toml");
    ASSERT_FALSE(c.ok()) << value;
    EXPECT_NE(c.error().message.find("models[0].max_sms"), std::string::npos) << c.error().message;
  }
}

TEST(SmPartitionConfig, AdminOption) {
  models::LoadOptions load;
  engine::ServeOptions serve;
  parse_admin_load_options(nlohmann::json{{"max_sms", 16}}, load, serve);
  EXPECT_EQ(load.max_sms, 16);
  for (const auto& bad : {nlohmann::json(0), nlohmann::json(-1), nlohmann::json("16"), nlohmann::json(2.5)}) {
    models::LoadOptions l;
    try {
      parse_admin_load_options(nlohmann::json{{"max_sms", bad}}, l, serve);
      ADD_FAILURE() << "accepted max_sms = " << bad.dump();
    } catch (const ApiException& e) {
      EXPECT_EQ(e.error().status, 400);
      EXPECT_EQ(e.error().param, "options.max_sms");
    }
  }
}

}  // namespace
}  // namespace fathom::server
