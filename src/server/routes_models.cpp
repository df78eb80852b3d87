#include "server/routes_models.h"

#include <set>

#include <httplib.h>

namespace fathom::server {

nlohmann::json model_json(const engine::LoadedModel& m) {
  nlohmann::json tasks = nlohmann::json::array();
  nlohmann::json endpoints = nlohmann::json::array();
  std::set<std::string> seen;
  for (auto task : m.info.tasks) {
    tasks.push_back(models::task_name(task));
    for (const auto& e : models::task_endpoints(task)) {
      if (seen.insert(e).second) endpoints.push_back(e);
    }
  }
  nlohmann::json j{{"id", m.name},
                   {"object", "model"},
                   {"created", m.created},
                   {"owned_by", "fathom"},
                   {"tasks", tasks},
                   {"endpoints", endpoints},
                   {"architecture", m.architecture},
                   {"device", m.device.to_string()},
                   {"dtype", dtype_name(m.dtype)},
                   {"state", engine::model_state_name(m.state.load())},
                   {"memory_bytes", m.memory_bytes}};
  if (m.memory_budget) j["memory_budget"] = m.memory_budget;
  if (m.state.load() == engine::ModelState::kFailed) j["error"] = m.error;
  if (m.embedder) {
    j["embedding_dim"] = m.embedder->embedding_dim;
    j["max_input_tokens"] = m.embedder->max_input_tokens;
    j["normalize"] = m.embedder->normalizes_by_default;
    if (m.embedder->supports_matryoshka) j["dimensions"] = m.embedder->matryoshka_dimensions;
    if (!m.embedder->token_outputs.empty()) {  // the embedding_type values /v1/embeddings accepts
      nlohmann::json types = nlohmann::json::array({"dense"});
      for (models::TokenOutput t : m.embedder->token_outputs) types.push_back(models::token_output_name(t));
      j["embedding_types"] = std::move(types);
    }
    if (!m.embedder->prompts.empty()) {  // the prompt_name values /v1/embeddings accepts
      nlohmann::json prompts = nlohmann::json::object();
      for (const auto& [name, text] : m.embedder->prompts) prompts[name] = text;
      j["prompts"] = std::move(prompts);
      if (!m.embedder->default_prompt_name.empty()) j["default_prompt_name"] = m.embedder->default_prompt_name;
    }
  }
  return j;
}

void register_model_routes(RouteContext& ctx) {
  ctx.router.get("/v1/models", [&ctx](const httplib::Request&, httplib::Response& res) {
    nlohmann::json data = nlohmann::json::array();
    for (const auto& m : ctx.models.list()) data.push_back(model_json(*m));
    res.set_content(nlohmann::json{{"object", "list"}, {"data", data}}.dump(), "application/json");
  });
  // Liveness: 503 while shutting down or once a model's device had a sticky fault. Whether every model is
  // ready is GET /ready (routes_ops.cpp), so a model loading or failing through the admin API does not make
  // a healthy process look dead.
  ctx.router.get("/health", [&ctx](const httplib::Request&, httplib::Response& res) {
    nlohmann::json models = nlohmann::json::object();
    for (const auto& m : ctx.models.list()) models[m->name] = engine::model_state_name(m->state.load());
    // A sticky device fault (DeviceWorker::faults()) makes the process unhealthy: it cannot serve those
    // models again without a restart.
    const auto faults = ctx.models.faults();
    if (!faults.empty()) {
      nlohmann::json list = nlohmann::json::array();
      std::string message = "device fault: ";
      for (std::size_t i = 0; i < faults.size(); ++i) {
        const auto& f = faults[i];
        list.push_back({{"model", f.model}, {"device", f.device}, {"error", f.error}});
        message += (i ? "; " : "") + std::string("model '") + f.model + "' on " + f.device + ": " + f.error;
      }
      auto body = error_json(api_error(503, message + " (restart fathom to recover)", {}, "device_fault"));
      body["status"] = "unhealthy";
      body["models"] = models;
      body["faults"] = list;
      res.status = 503;
      res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
      return;
    }
    bool ready = !ctx.models.shutting_down();
    res.status = ready ? 200 : 503;
    res.set_content(nlohmann::json{{"status", ready ? "ok" : "unavailable"}, {"models", models}}.dump(),
                    "application/json");
  });
  ctx.router.get("/version", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(nlohmann::json{{"name", "fathom"}, {"version", FATHOM_VERSION}, {"cuda", FATHOM_WITH_CUDA != 0}}.dump(),
                    "application/json");
  });
}

}  // namespace fathom::server
