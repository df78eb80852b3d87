#include "server/routes_embeddings.h"

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <future>
#include <charconv>
#include <cmath>
#include <cstring>

#include <httplib.h>

#include "engine/embedding_postprocess.h"
#include "server/embeddings_request.h"
#include "server/sequence_results.h"

namespace fathom::server {

static_assert(std::endian::native == std::endian::little, "base64 embeddings are little-endian float32 bytes");

std::string base64_encode(const unsigned char* bytes, std::size_t size) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < size; i += 3) {
    uint32_t n = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8) | bytes[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == size) {
    uint32_t n = uint32_t{bytes[i]} << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == size) {
    uint32_t n = (uint32_t{bytes[i]} << 16) | (uint32_t{bytes[i + 1]} << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

void append_float_array(std::string& out, const std::vector<float>& v) {
  char buf[32];
  out += '[';
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v[i]);
    out.append(buf, ec == std::errc() ? end : buf);
  }
  out += ']';
}

namespace {

// The request as the server's per-input token limit allows: truncate_prompt_tokens -1 means the smaller of
// the model's maximum and --max-input-tokens.
EmbeddingsRequest server_capped(const EmbeddingsRequest& request, const ServerOptions& options,
                                const engine::EmbedderFacts& facts) {
  EmbeddingsRequest r = request;
  if (options.max_input_tokens > 0 && r.truncate_prompt_tokens == -1 &&
      options.max_input_tokens < static_cast<std::size_t>(facts.max_input_tokens)) {
    r.truncate_prompt_tokens = static_cast<int>(options.max_input_tokens);
  }
  return r;
}

// A per-token output of one input as JSON: sparse -> [{"index": token id, "value": weight}, ...] sorted by
// token id (FlagEmbedding's lexical_weights); colbert -> [[...], ...], one vector per token after the first.
void append_token_output(std::string& out, models::TokenOutput kind, const std::vector<int32_t>& ids,
                         const std::vector<float>& rows, bool normalize) {
  char buf[32];
  if (kind == models::TokenOutput::kSparse) {
    out += '[';
    bool first = true;
    for (const auto& [id, weight] : engine::lexical_weights(ids, rows)) {
      if (!first) out += ',';
      first = false;
      auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), weight);
      out += R"({"index":)" + std::to_string(id) + R"(,"value":)";
      out.append(buf, ec == std::errc() ? end : buf);
      out += '}';
    }
    out += ']';
    return;
  }
  const std::size_t n = models::token_output_rows(kind, ids.size());
  const int width = n > 0 ? static_cast<int>(rows.size() / n) : 0;
  out += '[';
  bool first = true;
  for (const auto& vec : engine::multi_vectors(rows, width, normalize)) {
    if (!first) out += ',';
    first = false;
    append_float_array(out, vec);
  }
  out += ']';
}

void handle_embeddings(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const nlohmann::json body = parse_json_body(req, ctx.options.max_json_body_bytes);
  auto parsed = parse_embeddings_request(body, ctx.options.max_inputs);
  if (!parsed.ok()) {
    // Name the model in the access log even when the request is refused.
    if (auto m = body.find("model"); m != body.end() && m->is_string()) resolve_model(ctx, *m, models::Task::kEmbed, "/v1/embeddings");
    fail(parsed.error());
  }
  const EmbeddingsRequest& request = parsed.value();
  auto model = resolve_model(ctx, request.model, models::Task::kEmbed, "/v1/embeddings");
  if (!model->embedder || !model->embed_scheduler) {
    fail(500, "model '" + request.model + "' declares the embed task but has no embedding queue", "model", "internal");
  }
  auto tokenized = tokenize_inputs(server_capped(request, ctx.options, *model->embedder), *model->embedder);
  if (!tokenized.ok()) fail(tokenized.error());
  check_server_token_limits(tokenized.value().sequences, ctx.options,
                            [](std::size_t i) { return "input[" + std::to_string(i) + "]"; },
                            "shorten it or pass truncate_prompt_tokens");

  engine::EmbedScheduler* scheduler = model->embed_scheduler.get();
  if (request.token_output) {
    auto it = model->token_schedulers.find(*request.token_output);
    if (it == model->token_schedulers.end())
      fail(500, "model '" + request.model + "' has no queue for its " + models::token_output_name(*request.token_output) +
                    " output", "model", "internal");
    scheduler = it->second.get();
  }
  std::vector<engine::Embedding> vectors = run_sequences(ctx, *scheduler, tokenized.value().sequences, req);

  const bool normalize = request.normalize.value_or(model->embedder->normalizes_by_default);
  std::string out;
  out.reserve(64 + vectors.size() * (request.base64 ? 48 : 12) * (vectors.empty() ? 0 : vectors[0].size()));
  out += R"({"object":"list","data":[)";
  for (std::size_t i = 0; i < vectors.size(); ++i) {
    auto& v = vectors[i];
    if (!request.token_output) engine::finish_embedding(v, request.dimensions, normalize);
    for (float x : v) {
      if (!std::isfinite(x)) {
        fail(500, "model '" + request.model + "' produced a non-finite value for input " + std::to_string(i), {},
             "internal");
      }
    }
    if (i) out += ',';
    out += R"({"object":"embedding","index":)";
    out += std::to_string(i);
    out += R"(,"embedding":)";
    if (request.token_output) {
      append_token_output(out, *request.token_output, tokenized.value().sequences[i], v, normalize);
    } else if (request.base64) {
      out += '"';
      out += base64_encode(reinterpret_cast<const unsigned char*>(v.data()), v.size() * sizeof(float));
      out += '"';
    } else {
      append_float_array(out, v);
    }
    out += '}';
  }
  const std::size_t tokens = tokenized.value().prompt_tokens;
  out += R"(],"model":)";
  out += nlohmann::json(request.model).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  out += R"(,"usage":{"prompt_tokens":)" + std::to_string(tokens) + R"(,"total_tokens":)" + std::to_string(tokens) +
         "}}";
  res.status = 200;
  res.set_content(out, "application/json");
}

}  // namespace

void register_embedding_routes(RouteContext& ctx) {
  ctx.router.post("/v1/embeddings", [&ctx](const httplib::Request& req, httplib::Response& res) {
    handle_embeddings(ctx, req, res);
  });
}

}  // namespace fathom::server
