#pragma once
// POST /v1/embeddings (OpenAI-compatible; see docs/api.md).
#include "server/router.h"

namespace fathom::server {

void register_embedding_routes(RouteContext& ctx);

// Standard base64 of `bytes` (with padding).
std::string base64_encode(const unsigned char* bytes, std::size_t size);
// Appends `v` as a JSON array of floats (shortest round-trip decimal form) to `out`.
void append_float_array(std::string& out, const std::vector<float>& v);

}  // namespace fathom::server
