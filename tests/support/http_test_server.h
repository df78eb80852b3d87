#pragma once
// A fathom HTTP server for tests: binds 127.0.0.1 on a free port (access log off) and serves on a
// background thread until stop() or destruction. Not thread-safe: start and stop from the test's thread.
#include <memory>
#include <thread>

#include <httplib.h>

#include "engine/model_manager.h"
#include "server/server.h"

namespace fathom::testing {

class HttpTestServer {
 public:
  HttpTestServer() = default;
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;
  ~HttpTestServer() { stop(); }

  // Builds the server over `models` (load the models first: routes are mounted at construction) with
  // `options`, its host, port and access log overridden as above. A bind failure is a fatal gtest failure
  // (wrap the call in ASSERT_NO_FATAL_FAILURE to stop the caller too).
  void start(server::ServerOptions options, engine::ModelManager& models);
  // Stops the server and joins its thread; idempotent. Call before draining the models.
  void stop();

  int port() const { return port_; }
  // A client of the server whose reads time out after `read_timeout_s` seconds.
  httplib::Client client(int read_timeout_s) const;

 private:
  std::unique_ptr<server::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace fathom::testing
