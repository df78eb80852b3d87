#include "server/sequence_results.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "server/client_liveness.h"

namespace fathom::server {
namespace {

std::string format_seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", s);
  return buf;
}

}  // namespace

std::vector<engine::Embedding> run_sequences(const RouteContext& ctx, engine::EmbedScheduler& scheduler,
                                             const std::vector<std::vector<int32_t>>& sequences,
                                             const httplib::Request& req) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(ctx.options.request_timeout_s));
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  auto futures = scheduler.submit(sequences, cancel);
  if (!futures.ok()) fail(futures.error());
  std::vector<engine::Embedding> rows;
  rows.reserve(futures.value().size());
  std::optional<Error> first_error;
  ClientLiveness client(req);
  for (auto& f : futures.value()) {
    const WaitOutcome waited = wait_for_result(f, deadline, client);
    if (waited == WaitOutcome::kClientGone) {
      // Nobody will read the answer: drop the inputs still queued (a running batch finishes unobserved).
      scheduler.cancel(cancel, make_error(ErrorCode::kUnavailable, "the client closed the connection"));
      fail(499, "the client closed the connection; its queued inputs were dropped", {}, "client_closed");
    }
    if (waited == WaitOutcome::kTimeout) {
      // Drop whatever of this request still waits; inputs already in a running batch finish unobserved.
      scheduler.cancel(cancel, make_error(ErrorCode::kTimeout, "the request did not finish within the request timeout"));
      fail(504,
           "the request did not finish within " + format_seconds(ctx.options.request_timeout_s) +
               " s (--request-timeout-seconds); its queued inputs were dropped",
           {}, "timeout");
    }
    auto r = f.get();  // wait for every one, even after a failure, so nothing outlives the request
    if (!r.ok()) {
      if (!first_error) first_error = r.error();
      rows.emplace_back();
    } else {
      rows.push_back(std::move(r).value());
    }
  }
  if (first_error) fail(*first_error);
  return rows;
}

void check_server_token_limits(const std::vector<std::vector<int32_t>>& sequences, const ServerOptions& options,
                               const std::function<std::string(std::size_t)>& where, const std::string& remedy) {
  std::size_t total = 0;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    total += sequences[i].size();
    if (options.max_input_tokens > 0 && sequences[i].size() > options.max_input_tokens) {
      fail(400,
           where(i) + " has " + std::to_string(sequences[i].size()) + " tokens; this server accepts at most " +
               std::to_string(options.max_input_tokens) + " tokens per input (--max-input-tokens); " + remedy,
           "input", "too_many_tokens");
    }
  }
  if (options.max_request_tokens > 0 && total > options.max_request_tokens) {
    fail(400,
         "the request's inputs hold " + std::to_string(total) + " tokens together; this server accepts at most " +
             std::to_string(options.max_request_tokens) + " tokens per request (--max-request-tokens)",
         "input", "too_many_tokens");
  }
}

}  // namespace fathom::server
