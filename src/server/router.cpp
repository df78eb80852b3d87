#include "server/router.h"

#include <algorithm>

#include <httplib.h>

#include "base/log.h"
#include "server/access_log.h"

namespace fathom::server {

void Router::guarded(const Handler& handler, const httplib::Request& req, httplib::Response& res) {
  try {
    handler(req, res);
  } catch (const ApiException& e) {
    send_error(res, e.error());
  } catch (const Exception& e) {
    send_error(res, to_api_error(make_error(e.code(), e.what())));
  } catch (const std::bad_alloc&) {
    send_error(res, api_error(503, "out of memory while serving the request", {}, "out_of_memory"));
  } catch (const std::exception& e) {
    FATHOM_LOG(kError) << "unexpected exception in " << req.method << " " << req.path << ": " << e.what();
    send_error(res, api_error(500, std::string("internal error: ") + e.what(), {}, "internal"));
  } catch (...) {
    FATHOM_LOG(kError) << "unknown exception in " << req.method << " " << req.path;
    send_error(res, api_error(500, "internal error", {}, "internal"));
  }
}

void Router::get(const std::string& path, Handler handler) {
  methods_[path].insert("GET");
  http_.Get(path, [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    guarded(handler, req, res);
  });
}

void Router::post(const std::string& path, Handler handler) {
  methods_[path].insert("POST");
  http_.Post(path, [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    guarded(handler, req, res);
  });
}

void Router::del(const std::string& pattern, Handler handler) {
  methods_[pattern].insert("DELETE");
  http_.Delete(pattern, [handler = std::move(handler)](const httplib::Request& req, httplib::Response& res) {
    guarded(handler, req, res);
  });
}

std::vector<std::string> Router::methods(const std::string& path) const {
  auto it = methods_.find(path);
  if (it == methods_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<std::string> Router::routes() const {
  std::vector<std::string> out;
  for (const auto& [path, methods] : methods_) {
    for (const auto& m : methods) out.push_back(m + " " + path);
  }
  return out;
}

std::string describe_tasks(const std::vector<models::Task>& tasks) {
  std::string out;
  for (auto task : tasks) {
    if (!out.empty()) out += ", ";
    out += models::task_name(task);
    auto endpoints = models::task_endpoints(task);
    if (!endpoints.empty()) {
      out += " (";
      for (std::size_t i = 0; i < endpoints.size(); ++i) out += (i ? ", " : "") + endpoints[i];
      out += ")";
    }
  }
  return out.empty() ? "nothing" : out;
}

std::string describe_loaded_models(const engine::ModelManager& models) {
  std::string out;
  for (const auto& m : models.list()) {
    if (!out.empty()) out += ", ";
    out += m->name + " (";
    for (std::size_t i = 0; i < m->info.tasks.size(); ++i) out += (i ? ", " : "") + std::string(models::task_name(m->info.tasks[i]));
    out += ")";
  }
  return out.empty() ? "none" : out;
}

std::shared_ptr<const engine::LoadedModel> resolve_model(const RouteContext& ctx, const std::string& name,
                                                         models::Task task, const std::string& endpoint) {
  access_note_model(name);
  auto model = ctx.models.find(name);
  if (!model) {
    fail(404, "model '" + name + "' does not exist; loaded models: " + describe_loaded_models(ctx.models), "model",
         "model_not_found");
  }
  // Readiness first: a model still loading (or failed) has no tasks listed yet.
  if (model->state.load() != engine::ModelState::kReady || ctx.models.shutting_down()) {
    const engine::ModelState state = model->state.load();
    // A failed model says why it failed (error is written before the state becomes kFailed).
    fail(503,
         "model '" + name + "' is not ready (state: " + engine::model_state_name(state) + ")" +
             (state == engine::ModelState::kFailed && !model->error.empty() ? ": " + model->error : ""),
         "model", "model_not_ready");
  }
  if (!model->has_task(task)) {
    fail(400,
         "model '" + name + "' does not support " + endpoint + " (" + models::task_name(task) + "); it supports: " +
             describe_tasks(model->info.tasks),
         "model", "model_capability_mismatch");
  }
  return model;
}

nlohmann::json parse_json_body(const httplib::Request& req, std::size_t max_bytes) {
  if (req.body.size() > max_bytes) {
    fail(413,
         "the JSON body is " + std::to_string(req.body.size()) + " bytes; the limit is " + std::to_string(max_bytes) +
             " bytes (--max-json-body-bytes, limits.max_json_body_bytes)",
         {}, "body_too_large");
  }
  if (req.has_header("Content-Type")) {
    std::string type = req.get_header_value("Content-Type");
    std::string lower(type.size(), ' ');
    std::transform(type.begin(), type.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    if (lower.find("application/json") == std::string::npos) {
      fail(415, "Content-Type must be application/json, got '" + type + "'", {}, "unsupported_media_type");
    }
  }
  if (req.body.empty()) fail(400, "the request body is empty; expected a JSON object", {}, "invalid_json");
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    fail(400, std::string("malformed JSON in the request body: ") + e.what(), {}, "invalid_json");
  }
  if (!body.is_object()) {
    fail(400, std::string("the request body must be a JSON object, got ") + body.type_name(), {}, "invalid_json");
  }
  return body;
}

}  // namespace fathom::server
