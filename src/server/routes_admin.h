#pragma once
// The admin API (see docs/operations.md): load and unload models while serving.
//
//   POST   /v1/admin/models         {"name","path","options":{device,dtype,budget,max_batch_tokens,priority,
//                                    concurrent,max_sms,max_queued_requests,max_batch_size}}
//                                    -> 200 with the model's /v1/models entry once ready
//   DELETE /v1/admin/models/{name}  -> 200 {"id","object":"model","deleted":true} once its queued work is done
//
// Every call needs `Authorization: Bearer <token>` matching --admin-token: 401 when missing or wrong. Without
// --admin-token the routes answer 403 admin_disabled. Loading blocks the calling connection only; meanwhile
// GET /v1/models lists the model as "loading". A failed load stays listed as "failed" (with its error) until it
// is loaded again or deleted.
#include "server/router.h"

namespace fathom::server {

void register_admin_routes(RouteContext& ctx);

// Parses the "options" object of a load request over `defaults` (exposed for tests). Throws ApiException (400)
// naming the field at fault.
void parse_admin_load_options(const nlohmann::json& options, models::LoadOptions& load, engine::ServeOptions& serve);

}  // namespace fathom::server
