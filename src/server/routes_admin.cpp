#include "server/routes_admin.h"

#include <httplib.h>

#include "base/log.h"
#include "server/access_log.h"
#include "server/routes_models.h"
#include "server/server_config.h"

namespace fathom::server {
namespace {

// Compares without an early exit, so the time taken does not reveal how much of the token matched.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

void authorize(const RouteContext& ctx, const httplib::Request& req) {
  if (ctx.options.admin_token.empty()) {
    fail(403, "the admin API is disabled; start fathom with --admin-token TOKEN (or server.admin_token in the config file) to enable it",
         {}, "admin_disabled");
  }
  const std::string header = req.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.empty()) {
    fail(401, "the admin API needs an 'Authorization: Bearer <token>' header", {}, "unauthorized");
  }
  if (header.rfind(prefix, 0) != 0 || !same_secret(header.substr(prefix.size()), ctx.options.admin_token)) {
    fail(401, "invalid admin token", {}, "unauthorized");
  }
}

std::string string_field(const nlohmann::json& j, const char* key, const std::string& param) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail(400, param + " is required", param, "invalid_argument");
  if (!it->is_string()) fail(400, param + " must be a string, got " + std::string(it->type_name()), param, "invalid_argument");
  return it->get<std::string>();
}

void handle_load(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  authorize(ctx, req);
  const nlohmann::json body = parse_json_body(req, ctx.options.max_json_body_bytes);
  const std::string name = string_field(body, "name", "name");
  const std::string path = string_field(body, "path", "path");
  if (name.empty() || name.find('/') != std::string::npos) {
    fail(400, "name must be non-empty and without '/', got '" + name + "'", "name", "invalid_argument");
  }
  if (path.empty()) fail(400, "path must not be empty", "path", "invalid_argument");
  models::LoadOptions load = ctx.options.default_load;
  engine::ServeOptions serve = ctx.options.default_serve;
  if (auto it = body.find("options"); it != body.end() && !it->is_null()) parse_admin_load_options(*it, load, serve);
  for (auto& [key, value] : body.items()) {
    if (key != "name" && key != "path" && key != "options") {
      fail(400, "unknown field '" + key + "'; a load request has name, path and options", key, "invalid_argument");
    }
  }
  access_note_model(name);
  if (auto existing = ctx.models.find(name); existing && existing->state.load() != engine::ModelState::kFailed) {
    fail(409, "a model named '" + name + "' is already " + engine::model_state_name(existing->state.load()) +
                  "; unload it first (DELETE /v1/admin/models/" + name + ")",
         "name", "model_exists");
  }
  FATHOM_LOG(kInfo) << "admin: loading model '" << name << "' from " << path;
  Status status = ctx.models.load(name, path, load, serve);
  if (!status.ok()) {
    const Error& e = status.error();
    FATHOM_LOG(kWarn) << "admin: " << e.message;
    switch (e.code) {
      case ErrorCode::kOutOfMemory:
        fail(load.memory_budget ? 400 : 503, e.message, load.memory_budget ? "options.budget" : "",
             load.memory_budget ? "memory_budget_exceeded" : "out_of_memory");
      case ErrorCode::kInvalidArgument:
        if (ctx.models.find(name) && ctx.models.find(name)->state.load() != engine::ModelState::kFailed) {
          fail(409, e.message, "name", "model_exists");
        }
        fail(400, e.message, "path", "load_failed");
      case ErrorCode::kUnavailable: fail(503, e.message, {}, "unavailable");
      case ErrorCode::kInternal: fail(500, e.message, {}, "internal");
      default: fail(400, e.message, "path", "load_failed");
    }
  }
  auto model = ctx.models.find(name);
  if (!model) fail(500, "model '" + name + "' vanished right after loading", {}, "internal");
  FATHOM_LOG(kInfo) << "admin: model '" << name << "' is ready (" << model->memory_bytes << " bytes on "
                    << model->device.to_string() << ")";
  res.set_content(model_json(*model).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

void handle_unload(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  authorize(ctx, req);
  const std::string name = req.matches.size() > 1 ? std::string(req.matches[1]) : std::string();
  access_note_model(name);
  auto model = ctx.models.find(name);
  if (!model) {
    fail(404, "no model named '" + name + "' is loaded; loaded models: " + describe_loaded_models(ctx.models), "name",
         "model_not_found");
  }
  FATHOM_LOG(kInfo) << "admin: unloading model '" << name << "'";
  Status status = ctx.models.unload(name);
  if (!status.ok()) {
    const Error& e = status.error();
    if (e.code == ErrorCode::kNotFound) fail(404, e.message, "name", "model_not_found");
    fail(409, e.message, "name", "model_busy");
  }
  FATHOM_LOG(kInfo) << "admin: model '" << name << "' unloaded";
  res.set_content(nlohmann::json{{"id", name}, {"object", "model"}, {"deleted", true}}.dump(), "application/json");
}

}  // namespace

void parse_admin_load_options(const nlohmann::json& o, models::LoadOptions& load, engine::ServeOptions& serve) {
  if (!o.is_object()) fail(400, "options must be an object", "options", "invalid_argument");
  for (auto& [key, v] : o.items()) {
    const std::string param = "options." + key;
    auto bad = [&](const std::string& what) { fail(400, param + " " + what, param, "invalid_argument"); };
    if (key == "device") {
      if (!v.is_string()) bad("must be a string (cpu, cuda, cuda:N)");
      auto d = parse_device(v.get<std::string>());
      if (!d) bad("must be cpu, cuda or cuda:N, got '" + v.get<std::string>() + "'");
      load.device = *d;
    } else if (key == "dtype") {
      if (!v.is_string()) bad("must be a string (auto, float32, float16, bfloat16)");
      const std::string text = v.get<std::string>();
      if (text == "auto") {
        load.dtype.reset();
      } else {
        auto d = parse_dtype(text);
        if (!d || !is_float(*d)) bad("must be auto, float32, float16 or bfloat16, got '" + text + "'");
        load.dtype = *d;
      }
    } else if (key == "budget" || key == "memory_budget") {
      if (v.is_number_unsigned()) {
        load.memory_budget = v.get<std::size_t>();
      } else if (v.is_string()) {
        auto size = parse_byte_size(v.get<std::string>());
        if (!size.ok()) bad(size.error().message);
        load.memory_budget = size.value();
      } else {
        bad("must be a byte count or a size such as \"2GiB\"");
      }
    } else if (key == "max_batch_tokens") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > (1 << 30)) bad("must be an integer from 1 to 2^30");
      load.max_batch_tokens = v.get<int>();
    } else if (key == "priority") {
      if (!v.is_number() || !(v.get<double>() > 0)) bad("must be a positive number");
      serve.priority = v.get<double>();
    } else if (key == "concurrent") {
      if (!v.is_boolean()) bad("must be true or false");
      serve.concurrent = v.get<bool>();
    } else if (key == "max_sms") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > (1 << 16)) bad("must be a positive integer");
      load.max_sms = v.get<int>();
    } else if (key == "max_queued_requests") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1) bad("must be a positive integer");
      serve.max_queued = v.get<std::size_t>();
    } else if (key == "max_batch_size") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > (1 << 20)) bad("must be an integer from 1 to 2^20");
      serve.max_batch_size = v.get<int>();
    } else {
      fail(400,
           "unknown option '" + key +
               "'; options are device, dtype, budget, max_batch_tokens, priority, concurrent, max_sms, "
               "max_queued_requests, max_batch_size",
           param, "invalid_argument");
    }
  }
}

void register_admin_routes(RouteContext& ctx) {
  ctx.router.post("/v1/admin/models", [&ctx](const httplib::Request& req, httplib::Response& res) {
    handle_load(ctx, req, res);
  });
  ctx.router.del("/v1/admin/models/([^/]+)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    handle_unload(ctx, req, res);
  });
}

}  // namespace fathom::server
