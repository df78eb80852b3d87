#include "server/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <httplib.h>

#include "base/log.h"
#include "server/access_log.h"
#include "server/connection_queue.h"
#include "server/routes_audio.h"
#include "server/routes_embeddings.h"
#include "server/routes_score.h"
#include "engine/metrics.h"
#include "server/routes_admin.h"
#include "server/routes_models.h"
#include "server/routes_ops.h"

namespace fathom::server {

// One line per route family; a family registers only the endpoints of tasks in ctx.tasks.
void mount_routes(RouteContext& ctx) {
  register_model_routes(ctx);  // /v1/models, /health, /version: always
  register_ops_routes(ctx);    // /metrics, /ready: always
  register_admin_routes(ctx);  // /v1/admin/models: always (refuses unless --admin-token is set)
  if (ctx.serves(models::Task::kEmbed)) register_embedding_routes(ctx);
  // Rerank and score: cross-encoders, and embedding models by cosine similarity.
  if (ctx.serves(models::Task::kScore) || ctx.serves(models::Task::kEmbed)) register_score_routes(ctx);
  if (ctx.serves(models::Task::kClassify)) register_classify_routes(ctx);
  if (ctx.serves(models::Task::kTranscribe) || ctx.serves(models::Task::kTranslate)) register_audio_routes(ctx);
}

namespace {

std::string status_message(int status) {
  switch (status) {
    case 400: return "malformed HTTP request (bad request line or headers, or a body without Content-Length)";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 416: return "range not satisfiable";
    case 503: return "service unavailable";
    default: return "HTTP error " + std::to_string(status);
  }
}

}  // namespace

Server::Server(ServerOptions options, engine::ModelManager& models)
    : options_(std::move(options)), models_(models), http_(std::make_unique<httplib::Server>()) {
  router_ = std::make_unique<Router>(*http_);
  std::set<models::Task> tasks;
  for (const auto& m : models_.list()) tasks.insert(m->info.tasks.begin(), m->info.tasks.end());
  ctx_ = std::make_unique<RouteContext>(RouteContext{*router_, models_, options_, std::move(tasks)});
  ctx_->all_families = !options_.admin_token.empty();  // models of any task may arrive at run time
  install_handlers();
  mount_routes(*ctx_);
}

Server::~Server() { stop(); }

void Server::install_handlers() {
  const std::size_t max_connections = options_.max_connections;
  http_->new_task_queue = [max_connections] { return new ConnectionQueue(max_connections); };
  // httplib listens with a backlog of 5, so a burst of connections would be refused before the accept loop
  // sees them. Remember the listening socket to raise its backlog after bind (see bind()).
  // TCP_NODELAY: httplib writes a response's headers and body in separate sends; with Nagle's algorithm the
  // body then waits for the client's delayed ACK of the headers (~40 ms on Linux) on every keep-alive
  // request. Set on the listening socket, accepted connections inherit it.
  http_->set_tcp_nodelay(true);
  http_->set_socket_options([this](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_keep_alive_timeout(options_.keep_alive_timeout_s);
  http_->set_keep_alive_max_count(1000);
  http_->set_read_timeout(60, 0);
  http_->set_write_timeout(60, 0);

  http_->set_pre_routing_handler([](const httplib::Request&, httplib::Response&) {
    access_begin();
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http_->set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                        httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // a handler's own error
    Router::guarded([this](const httplib::Request& rq, httplib::Response& rs) { handle_unrouted(rq, rs); }, req, res);
    return httplib::Server::HandlerResponse::Handled;
  }));
  http_->set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    send_error(res, api_error(500, "internal error: " + what, {}, "internal"));
  });
  http_->set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    record_request_metrics(req, res);
    if (options_.access_log) access_end(req, res);
  });
}

void Server::record_request_metrics(const httplib::Request& req, const httplib::Response& res) {
  // Labels stay bounded: a registered route or "other"; a loaded model's name or "".
  std::string route = "other";
  if (!router_->methods(req.path).empty()) route = req.path;
  else if (req.path.rfind("/v1/admin/models/", 0) == 0) route = "/v1/admin/models/{name}";
  std::string model = access_model();
  if (!model.empty() && !models_.find(model)) model.clear();
  engine::Metrics::global().record_request(route, model, res.status, access_elapsed_s());
}

void Server::handle_unrouted(const httplib::Request& req, httplib::Response& res) {
  if (res.status == 404) {
    auto methods = router_->methods(req.path);
    if (!methods.empty()) {
      std::string allow;
      for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
      res.set_header("Allow", allow);
      fail(405, req.method + " is not allowed on " + req.path + "; use " + allow, {}, "method_not_allowed");
    }
    for (auto task : {models::Task::kEmbed, models::Task::kTranscribe, models::Task::kTranslate, models::Task::kScore,
                      models::Task::kClassify}) {
      for (const auto& endpoint : models::task_endpoints(task)) {
        if (endpoint != req.path) continue;
        std::string serving;
        for (const auto& m : models_.list()) {
          if (m->has_task(task)) serving += (serving.empty() ? "" : ", ") + m->name;
        }
        if (!serving.empty()) {
          fail(404,
               "model(s) " + serving + " can " + models::task_name(task) + ", but this server build has no handler for " +
                   req.path,
               {}, "endpoint_not_served");
        }
        {
          fail(404,
               "no loaded model serves " + req.path + " (" + models::task_name(task) +
                   "); loaded models: " + describe_loaded_models(models_),
               {}, "endpoint_not_served");
        }
      }
    }
    std::string known;
    for (const auto& r : router_->routes()) known += (known.empty() ? "" : ", ") + r;
    fail(404, "unknown route " + req.method + " " + req.path + "; available: " + known, {}, "not_found");
  }
  if (res.status == 413) {
    fail(413,
         "request body too large: the limit is " + std::to_string(options_.max_body_bytes) +
             " bytes (--max-body-bytes)",
         {}, "body_too_large");
  }
  fail(res.status, status_message(res.status));
}

Result<int> Server::bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) return make_error(ErrorCode::kUnavailable, "cannot bind to " + options_.host + " (any port)");
  } else if (!http_->bind_to_port(options_.host, port)) {
    return make_error(ErrorCode::kUnavailable,
                      "cannot listen on " + options_.host + ":" + std::to_string(port) +
                          " (address in use or not available)");
  }
  port_ = port;
  const std::size_t files = raise_open_file_limit(options_.max_connections);
  if (files < options_.max_connections + 256) {
    FATHOM_LOG(kWarn) << "the open-file limit is " << files << " (hard limit); --max-connections "
                      << options_.max_connections << " needs about " << options_.max_connections + 256
                      << ": connections beyond the limit wait in the kernel's accept queue";
  }
  // Linux lets listen() be called again on a listening socket to change its backlog.
  if (listen_socket_ >= 0) ::listen(listen_socket_, static_cast<int>(std::max<std::size_t>(options_.max_connections, 128)));
  return port;
}

void Server::run() { http_->listen_after_bind(); }

void Server::stop() {
  if (http_) http_->stop();
}

std::vector<std::string> Server::routes() const { return router_->routes(); }

}  // namespace fathom::server
