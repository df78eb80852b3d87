#include "support/http_test_server.h"

#include <gtest/gtest.h>

namespace fathom::testing {

void HttpTestServer::start(server::ServerOptions options, engine::ModelManager& models) {
  options.host = "127.0.0.1";
  options.port = 0;
  options.access_log = false;
  server_ = std::make_unique<server::Server>(options, models);
  auto port = server_->bind();
  ASSERT_TRUE(port.ok()) << port.error().message;
  port_ = port.value();
  thread_ = std::thread([this] { server_->run(); });
}

void HttpTestServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

httplib::Client HttpTestServer::client(int read_timeout_s) const {
  httplib::Client c("127.0.0.1", port_);
  c.set_read_timeout(read_timeout_s, 0);
  return c;
}

}  // namespace fathom::testing
