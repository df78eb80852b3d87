#pragma once
// Running a request's token sequences through a model's sequence queue (embeddings, scores, classes) and
// waiting for every row, as each sequence route does.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/embed_scheduler.h"
#include "server/router.h"

namespace httplib {
struct Request;
}

namespace fathom::server {

// Submits `sequences` to `scheduler` and returns one row per sequence, in order. Waits at most the server's
// request timeout and watches the client while waiting. Throws ApiException: 429 when the queue is full,
// 499 when the client went away and 504 on timeout (both drop this request's inputs still queued), and the
// first failed sequence's error (after every sequence has finished, so nothing outlives the request).
std::vector<engine::Embedding> run_sequences(const RouteContext& ctx, engine::EmbedScheduler& scheduler,
                                             const std::vector<std::vector<int32_t>>& sequences,
                                             const httplib::Request& req);

// The server-wide token limits (--max-input-tokens per sequence, --max-request-tokens for all together; each
// model's own limit is checked where its inputs are tokenized). Throws ApiException 400 too_many_tokens,
// naming the sequence by `where(i)` (e.g. "input[3]") and ending the per-sequence message with `remedy`.
void check_server_token_limits(const std::vector<std::vector<int32_t>>& sequences, const ServerOptions& options,
                               const std::function<std::string(std::size_t)>& where, const std::string& remedy);

}  // namespace fathom::server
