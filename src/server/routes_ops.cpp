#include "server/routes_ops.h"

#include <httplib.h>

#include "engine/metrics.h"

namespace fathom::server {

std::string render_metrics(const engine::ModelManager& models) {
  const auto list = models.list();
  std::vector<engine::GaugeSample> gauges;
  for (const auto& m : list) {
    std::size_t queued = m->embed_scheduler ? m->embed_scheduler->stats().queued : 0;
    gauges.push_back({"fathom_queue_depth", "Inputs waiting in a model's queue", {{"model", m->name}}, static_cast<double>(queued)});
  }
  for (const auto& m : list) {
    if (!m->speech_scheduler) continue;
    gauges.push_back({"fathom_speech_jobs_running", "Speech requests in a model's running batch",
                      {{"model", m->name}}, static_cast<double>(m->speech_scheduler->stats().running)});
  }
  for (const auto& m : list) {
    gauges.push_back({"fathom_model_memory_bytes", "Device memory a model holds (weights and persistent workspaces)",
                      {{"model", m->name}, {"device", m->device.to_string()}}, static_cast<double>(m->memory_now())});
  }
  for (const auto& m : list) {
    if (m->memory_budget == 0) continue;
    gauges.push_back({"fathom_model_memory_budget_bytes", "A model's memory budget on its device",
                      {{"model", m->name}, {"device", m->device.to_string()}}, static_cast<double>(m->memory_budget)});
  }
  for (const auto& m : list) {
    const auto state = m->state.load();
    for (auto s : {engine::ModelState::kLoading, engine::ModelState::kReady, engine::ModelState::kUnloading,
                   engine::ModelState::kFailed}) {
      gauges.push_back({"fathom_model_state", "1 for a model's current state (loading, ready, unloading, failed)",
                        {{"model", m->name}, {"state", engine::model_state_name(s)}}, state == s ? 1.0 : 0.0});
    }
  }
  for (const auto& f : models.faults()) {
    gauges.push_back({"fathom_device_fault", "1 for a model stopped by a sticky fault of its device",
                      {{"model", f.model}, {"device", f.device}}, 1.0});
  }
  gauges.push_back({"fathom_shutting_down", "1 while the server is shutting down", {}, models.shutting_down() ? 1.0 : 0.0});
  return engine::Metrics::global().render(gauges);
}

void register_ops_routes(RouteContext& ctx) {
  ctx.router.get("/metrics", [&ctx](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(ctx.models), "text/plain; version=0.0.4; charset=utf-8");
  });
  ctx.router.get("/ready", [&ctx](const httplib::Request&, httplib::Response& res) {
    nlohmann::json states = nlohmann::json::object();
    std::string not_ready;
    for (const auto& m : ctx.models.list()) {
      const auto state = m->state.load();
      states[m->name] = engine::model_state_name(state);
      if (state == engine::ModelState::kReady) continue;
      not_ready += (not_ready.empty() ? "" : ", ") + m->name + " (" + engine::model_state_name(state);
      if (state == engine::ModelState::kFailed && !m->error.empty()) not_ready += ": " + m->error;
      not_ready += ")";
    }
    for (const auto& f : ctx.models.faults()) {
      states[f.model] = "device_fault";
      not_ready += (not_ready.empty() ? "" : ", ") + f.model + " (device fault on " + f.device + ": " + f.error + ")";
    }
    if (ctx.models.shutting_down()) not_ready = "the server is shutting down" + (not_ready.empty() ? "" : "; " + not_ready);
    if (not_ready.empty()) {
      res.set_content(nlohmann::json{{"status", "ready"}, {"models", states}}.dump(), "application/json");
      return;
    }
    auto body = error_json(api_error(503, "not ready: " + not_ready, {}, "not_ready"));
    body["status"] = "not_ready";
    body["models"] = states;
    res.status = 503;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
  });
}

}  // namespace fathom::server
