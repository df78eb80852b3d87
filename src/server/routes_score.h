#pragma once
// Cross-encoder and classifier routes (see docs/api.md):
//   POST /v1/rerank, /rerank, /v2/rerank  rank documents against a query (Cohere/Jina and TEI shapes)
//   POST /v1/score, /score                 scores of text pairs (1:1, 1:N, N:N)
//   POST /v1/classify, /classify           labels and probabilities of texts
// Rerank and score are served by cross-encoders (task score: sequence-classification heads with one logit)
// and by embedding models (cosine similarity of the two texts' embeddings); classify by classifiers.
#include "server/router.h"

namespace fathom::server {

void register_score_routes(RouteContext& ctx);     // rerank + score
void register_classify_routes(RouteContext& ctx);  // classify

}  // namespace fathom::server
