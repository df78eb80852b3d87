#pragma once
// Route registration shared by every route family, and the helpers families use.
//
// A route family (embeddings, audio, models) lives in its own routes_<family>.{h,cpp} and is mounted by
// one call, register_<family>_routes(RouteContext&), from mount_routes() in server.cpp. Handlers registered
// through Router run inside the handler wrapper: ApiException, fathom::Exception and any other exception
// become an OpenAI-style error response, and the route is remembered so a wrong method gets 405.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "models/model.h"
#include "models/registry.h"
#include "server/http_errors.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace fathom::server {

// Server-wide limits and settings (filled by app/ from the command line and the config file).
struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                              // 0 = any free port
  std::size_t max_body_bytes = 32u << 20;       // any request body above this gets 413 (audio uploads: 25 MB files)
  std::size_t max_json_body_bytes = 2u << 20;   // JSON bodies (embeddings, admin) above this get 413
  std::size_t max_inputs = 2048;                // inputs per embeddings request
  std::size_t max_connections = 1024;           // connection threads at once (beyond: they queue)
  int keep_alive_timeout_s = 5;                 // idle keep-alive connections close after this
  bool access_log = true;                       // one line per request at info level
  std::size_t max_input_tokens = 0;             // tokens per input (0 = each model's own maximum)
  std::size_t max_request_tokens = 0;           // tokens of all inputs of one request together (0 = no limit)
  double request_timeout_s = 600;               // a request still waiting after this gets 504; its queued work is dropped
  std::string admin_token;                      // Bearer token of /v1/admin/*; empty = the admin API is disabled
  // Defaults for models loaded at run time through the admin API (serve fills them from its config).
  models::LoadOptions default_load;
  engine::ServeOptions default_serve;
};

class Router {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
  explicit Router(httplib::Server& http) : http_(http) {}

  void get(const std::string& path, Handler handler);
  void post(const std::string& path, Handler handler);
  // `pattern` may hold a regex group (httplib's req.matches), e.g. "/v1/admin/models/([^/]+)".
  void del(const std::string& pattern, Handler handler);
  // Methods registered for `path`, e.g. {"GET"}; empty when the path is unknown.
  std::vector<std::string> methods(const std::string& path) const;
  // Every registered "METHOD path".
  std::vector<std::string> routes() const;

  // Runs `handler`, turning every exception into an error response.
  static void guarded(const Handler& handler, const httplib::Request& req, httplib::Response& res);

 private:
  httplib::Server& http_;
  std::map<std::string, std::set<std::string>> methods_;  // path -> methods
};

struct RouteContext {
  Router& router;
  engine::ModelManager& models;
  const ServerOptions& options;
  std::set<models::Task> tasks;  // union of the loaded models' tasks: the routes to mount
  // Mount every route family whatever is loaded now (models may be loaded at run time through the admin
  // API); a request naming no loaded model still gets 404 model_not_found.
  bool all_families = false;

  bool serves(models::Task task) const { return all_families || tasks.count(task) > 0; }
};

// "a (embed), b (transcribe, translate)" or "none".
std::string describe_loaded_models(const engine::ModelManager& models);
// "transcribe (/v1/audio/transcriptions), translate (/v1/audio/translations)"
std::string describe_tasks(const std::vector<models::Task>& tasks);

// Finds model `name` and checks that it can serve `task` (requested at `endpoint`). Throws ApiException:
// 404 model_not_found (listing the loaded models), 400 model_capability_mismatch (naming what the model
// does support), 503 model_not_ready when the model is not ready (checked first: a model still loading has
// no tasks listed yet).
std::shared_ptr<const engine::LoadedModel> resolve_model(const RouteContext& ctx, const std::string& name,
                                                         models::Task task, const std::string& endpoint);

// Parses a JSON object body. Throws ApiException: 413 body_too_large for a body over `max_bytes` (naming the
// limit and --max-json-body-bytes), 415 for a non-JSON content type, 400 for malformed JSON (with the
// parser's position) or a body that is not an object.
nlohmann::json parse_json_body(const httplib::Request& req, std::size_t max_bytes);

}  // namespace fathom::server
