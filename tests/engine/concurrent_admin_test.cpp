// The `concurrent` option of POST /v1/admin/models: true gives the loaded model a device worker of its own,
// an explicit false wins over a server default of true, and a non-boolean is a 400 naming the option.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "fake_model.h"
#include "support/http_test_server.h"
#include "support/paths.h"

namespace fathom::engine {
namespace {

using nlohmann::json;

httplib::Result admin_post(httplib::Client& client, const std::string& body) {
  httplib::Headers headers{{"Authorization", "Bearer tok"}};
  return client.Post("/v1/admin/models", headers, body, "application/json");
}

TEST(ConcurrentAdmin, TheOptionPlacesTheModelOnItsOwnWorker) {
  ModelManager manager;
  ASSERT_TRUE(manager.add("m", std::make_unique<fathom::testing::FakeModel>("m"), 64).ok());
  server::ServerOptions options;
  options.admin_token = "tok";
  options.default_serve.concurrent = true;  // as [defaults] concurrent = true
  fathom::testing::HttpTestServer server;
  ASSERT_NO_FATAL_FAILURE(server.start(options, manager));
  auto client = server.client(60);
  const std::string dir = fathom::testing::fixture("models/bert-mean-norm").string();

  auto own = admin_post(client, R"({"name":"own","path":")" + dir + R"(","options":{"concurrent":true}})");
  ASSERT_TRUE(own);
  ASSERT_EQ(own->status, 200) << own->body;
  EXPECT_TRUE(manager.find("own")->concurrent);
  EXPECT_EQ(manager.worker_count(), 2u);  // cpu (m) and cpu/own

  auto shared = admin_post(client, R"({"name":"shared","path":")" + dir + R"(","options":{"concurrent":false}})");
  ASSERT_TRUE(shared);
  ASSERT_EQ(shared->status, 200) << shared->body;
  EXPECT_FALSE(manager.find("shared")->concurrent);
  EXPECT_EQ(manager.worker_count(), 2u);

  auto dflt = admin_post(client, R"({"name":"dflt","path":")" + dir + R"("})");
  ASSERT_TRUE(dflt);
  ASSERT_EQ(dflt->status, 200) << dflt->body;
  EXPECT_TRUE(manager.find("dflt")->concurrent);  // the server default
  EXPECT_EQ(manager.worker_count(), 3u);

  auto bad = admin_post(client, R"({"name":"x","path":")" + dir + R"(","options":{"concurrent":"yes"}})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto j = json::parse(bad->body, nullptr, false);
  ASSERT_TRUE(j.is_object() && j.contains("error")) << bad->body;
  EXPECT_EQ(j["error"]["param"], "options.concurrent") << bad->body;

  for (const char* name : {"own", "shared", "dflt"}) {
    auto r = client.Post("/v1/embeddings", R"({"model":")" + std::string(name) + R"(","input":"hello there"})",
                         "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << name << ": " << r->body;
  }
  server.stop();
  manager.shutdown();
}

}  // namespace
}  // namespace fathom::engine
