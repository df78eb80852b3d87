#pragma once
// The HTTP server: cpp-httplib with fathom's connection queue, route families, error shape and access log.
//
// Routes are mounted once, at construction, from the union of the tasks of the models loaded in `models`
// (load models first). A request to an endpoint that no loaded model serves gets a 404 naming the loaded
// models and their tasks; a known path with the wrong method gets 405; a body over max_body_bytes gets 413.
//
// Lifecycle: bind() then run() (blocks) on one thread; stop() from any thread makes run() stop accepting,
// finish the requests in flight and return. The engine is drained by the caller (ModelManager::shutdown).
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "engine/model_manager.h"
#include "server/router.h"

namespace httplib {
class Server;
}

namespace fathom::server {

class ConnectionQueue;

class Server {
 public:
  Server(ServerOptions options, engine::ModelManager& models);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds options.host:options.port; returns the bound port (useful with port 0).
  Result<int> bind();
  // Serves until stop(). Returns after in-flight requests have finished.
  void run();
  // Thread-safe; idempotent.
  void stop();

  // "METHOD path" of every mounted route.
  std::vector<std::string> routes() const;
  int port() const { return port_; }

 private:
  void install_handlers();
  void handle_unrouted(const httplib::Request& req, httplib::Response& res);
  void record_request_metrics(const httplib::Request& req, const httplib::Response& res);

  ServerOptions options_;
  engine::ModelManager& models_;
  std::unique_ptr<httplib::Server> http_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<RouteContext> ctx_;
  int port_ = 0;
  int listen_socket_ = -1;
};

// Mounts every route family the loaded models need (one call per family) plus the always-present routes.
void mount_routes(RouteContext& ctx);

}  // namespace fathom::server
