#pragma once
// GET /v1/models, GET /health, GET /version (see docs/api.md).
#include "server/router.h"

namespace fathom::server {

void register_model_routes(RouteContext& ctx);

// The /v1/models entry of one model.
nlohmann::json model_json(const engine::LoadedModel& model);

}  // namespace fathom::server
