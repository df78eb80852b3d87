#pragma once
// Operations routes (see docs/operations.md):
//   GET /metrics  Prometheus text format: the counters and histograms of engine::Metrics plus, per model, the
//                 queue depth, memory, budget and state read from the ModelManager at scrape time.
//   GET /ready    200 {"status":"ready","models":{...}} when every listed model is ready; else 503 with an
//                 OpenAI-style error naming each model that is not (loading, unloading, failed) — or that the
//                 server is shutting down.
#include "server/router.h"

namespace fathom::server {

void register_ops_routes(RouteContext& ctx);

// The /metrics body for `models` (exposed for tests).
std::string render_metrics(const engine::ModelManager& models);

}  // namespace fathom::server
