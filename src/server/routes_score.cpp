#include "server/routes_score.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string_view>

#include <httplib.h>

#include "formats/tokenizer/tokenizer.h"

#include "server/embeddings_request.h"
#include "server/routes_embeddings.h"
#include "server/score_request.h"
#include "server/sequence_results.h"

namespace fathom::server {
namespace {

using Json = nlohmann::json;
using models::Task;

// "rerank-3f9c..." style ids, as OpenAI-style APIs give every answer one.
std::string response_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}();
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s-%016llx", prefix,
                static_cast<unsigned long long>(seed ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull)));
  return buf;
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json usage(std::size_t tokens) { return {{"prompt_tokens", tokens}, {"total_tokens", tokens}}; }

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The model of a request that named none (TEI's rerank shape): the one ready model that can serve it.
std::string only_model(const RouteContext& ctx, const std::vector<Task>& tasks, const std::string& endpoint) {
  std::vector<std::string> names;
  for (const auto& m : ctx.models.list()) {
    if (m->state.load() != engine::ModelState::kReady) continue;
    for (Task t : tasks)
      if (m->has_task(t)) {
        names.push_back(m->name);
        break;
      }
  }
  if (names.size() == 1) return names[0];
  std::string listed;
  for (const auto& n : names) listed += (listed.empty() ? "" : ", ") + n;
  fail(400,
       "'model' is required: " + std::to_string(names.size()) + " loaded models serve " + endpoint +
           (listed.empty() ? std::string() : " (" + listed + ")"),
       "model", "model_required");
}

// A cross-encoder (task score) or, scoring by cosine similarity, an embedding model.
std::shared_ptr<const engine::LoadedModel> resolve_scorer(const RouteContext& ctx, std::string name,
                                                          const std::string& endpoint) {
  if (name.empty()) name = only_model(ctx, {Task::kScore}, endpoint);
  auto m = ctx.models.find(name);
  if (m && m->state.load() == engine::ModelState::kReady && !m->has_task(Task::kScore) && m->has_task(Task::kEmbed))
    return resolve_model(ctx, name, Task::kEmbed, endpoint);
  return resolve_model(ctx, name, Task::kScore, endpoint);
}

// The token limit of one sequence: the model's, capped by --max-input-tokens.
int sequence_limit(int model_limit, const ServerOptions& options) {
  if (options.max_input_tokens > 0 && options.max_input_tokens < static_cast<std::size_t>(model_limit))
    return static_cast<int>(options.max_input_tokens);
  return model_limit;
}

// The truncation length asked (-1: the limit), or nullopt when none was asked.
std::optional<int> truncation_length(std::optional<int> asked, int limit) {
  if (!asked) return std::nullopt;
  return *asked == -1 ? limit : std::min(*asked, limit);
}

const char* kTruncateHint = "shorten it or pass \"truncate\": true to cut the document side to the limit";

// Packed cross-encoder inputs of the pairs (texts_a[i], texts_b[i]); `where(i)` names pair i in errors.
std::vector<std::vector<int32_t>> encode_pairs(const engine::ClassifierFacts& facts, const std::string& model,
                                               const std::vector<std::string_view>& a,
                                               const std::vector<std::string_view>& b, std::optional<int> truncate_to,
                                               const ServerOptions& options,
                                               const std::function<std::string(std::size_t)>& where) {
  const int limit = sequence_limit(facts.max_input_tokens, options);
  const std::optional<int> cut = truncation_length(truncate_to, limit);
  std::vector<std::vector<int32_t>> out;
  out.reserve(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto enc = facts.tokenizer->encode_pair(a[i], b[i], cut);
    if (!enc.ok()) {
      Error e = enc.error();
      e.message = where(i) + ": " + e.message;
      if (e.code == ErrorCode::kTooLarge) e.code = ErrorCode::kInvalidArgument;
      fail(e);
    }
    if (static_cast<int>(enc->ids.size()) > facts.max_input_tokens) {
      fail(400,
           where(i) + " has " + std::to_string(enc->ids.size()) + " tokens with its special tokens, more than the " +
               std::to_string(facts.max_input_tokens) + " tokens model '" + model + "' accepts; " + kTruncateHint,
           "input", "too_many_tokens");
    }
    std::vector<int32_t> packed(enc->ids.size());
    for (std::size_t k = 0; k < packed.size(); ++k) packed[k] = models::pack_segment(enc->ids[k], enc->type_ids[k]);
    out.push_back(std::move(packed));
  }
  check_server_token_limits(out, options, where, kTruncateHint);
  return out;
}

// Embedding-model inputs of `texts`, each tokenized as /v1/embeddings does; `where(i)` names text i.
std::vector<std::vector<int32_t>> encode_texts(const engine::EmbedderFacts& facts, const std::string& model,
                                               const std::vector<std::string_view>& texts,
                                               std::optional<int> truncate_to, const ServerOptions& options,
                                               const std::function<std::string(std::size_t)>& where) {
  const int limit = sequence_limit(facts.max_input_tokens, options);
  std::vector<std::vector<int32_t>> out;
  out.reserve(texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    EmbeddingsRequest one;
    one.model = model;
    one.single = true;
    one.texts = {std::string(texts[i])};
    one.truncate_prompt_tokens = truncation_length(truncate_to, limit);
    auto tokenized = tokenize_inputs(one, facts);
    if (!tokenized.ok()) {
      Error e = tokenized.error();
      if (e.message.rfind("input", 0) == 0) e.message = where(i) + e.message.substr(5);
      fail(e);
    }
    out.push_back(std::move(tokenized.value().sequences[0]));
  }
  check_server_token_limits(out, options, where, "shorten it or pass \"truncate\": true");
  return out;
}

std::size_t token_count(const std::vector<std::vector<int32_t>>& seqs) {
  std::size_t n = 0;
  for (const auto& s : seqs) n += s.size();
  return n;
}

float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

// Softmax over the logits, shifted by their maximum (used for scores and for classification probabilities).
std::vector<float> softmax(const std::vector<float>& logits) {
  const float top = *std::max_element(logits.begin(), logits.end());
  std::vector<float> probs(logits.size());
  float sum = 0;
  for (std::size_t k = 0; k < logits.size(); ++k) {
    probs[k] = std::exp(logits[k] - top);
    sum += probs[k];
  }
  for (float& p : probs) p /= sum;
  return probs;
}

float activated(const std::vector<float>& logits, models::ScoreActivation activation) {
  switch (activation) {
    case models::ScoreActivation::kSigmoid: return sigmoid(logits[0]);
    case models::ScoreActivation::kIdentity: return logits[0];
    case models::ScoreActivation::kSoftmax: return softmax(logits)[0];
  }
  return logits[0];
}

float cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    na += static_cast<double>(a[i]) * a[i];
    nb += static_cast<double>(b[i]) * b[i];
  }
  return na > 0 && nb > 0 ? static_cast<float>(dot / std::sqrt(na * nb)) : 0.0f;
}

void check_finite(const std::vector<float>& scores, const std::string& model) {
  for (std::size_t i = 0; i < scores.size(); ++i)
    if (!std::isfinite(scores[i]))
      fail(500, "model '" + model + "' produced a non-finite score for pair " + std::to_string(i), {}, "internal");
}

// Scores of the pairs (a[i], b[i]) by `model`, and the tokens they took. `raw`: a cross-encoder's logit
// rather than its activated score. Embedding models embed each distinct text once.
struct PairScores {
  std::vector<float> scores;
  std::size_t tokens = 0;
};
PairScores score_pairs(const RouteContext& ctx, const engine::LoadedModel& model, const std::vector<std::string_view>& a,
                       const std::vector<std::string_view>& b, std::optional<int> truncate_to, bool raw,
                       const httplib::Request& req, const std::function<std::string(std::size_t)>& where_pair,
                       const std::function<std::string(bool, std::size_t)>& where_text) {
  PairScores out;
  if (model.classifier && model.classify_scheduler) {
    auto seqs = encode_pairs(*model.classifier, model.name, a, b, truncate_to, ctx.options, where_pair);
    out.tokens = token_count(seqs);
    auto rows = run_sequences(ctx, *model.classify_scheduler, seqs, req);
    for (const auto& row : rows) {
      if (row.empty()) fail(500, "model '" + model.name + "' returned no logits", {}, "internal");
      out.scores.push_back(raw ? row[0] : activated(row, model.classifier->activation));
    }
  } else if (model.embedder && model.embed_scheduler) {
    // Distinct texts of each side, embedded once each.
    std::vector<std::string_view> texts;
    std::vector<std::string> names;
    std::map<std::string_view, std::size_t> seen[2];
    std::vector<std::size_t> ia(a.size()), ib(b.size());
    auto add = [&](int side, std::string_view t, std::size_t i) {
      auto [it, fresh] = seen[side].emplace(t, texts.size());
      if (fresh) {
        texts.push_back(t);
        names.push_back(where_text(side == 1, i));
      }
      return it->second;
    };
    for (std::size_t i = 0; i < a.size(); ++i) ia[i] = add(0, a[i], i);
    for (std::size_t i = 0; i < b.size(); ++i) ib[i] = add(1, b[i], i);
    auto seqs = encode_texts(*model.embedder, model.name, texts, truncate_to, ctx.options,
                             [&](std::size_t k) { return names[k]; });
    out.tokens = token_count(seqs);
    auto vectors = run_sequences(ctx, *model.embed_scheduler, seqs, req);
    for (std::size_t i = 0; i < a.size(); ++i) out.scores.push_back(cosine(vectors[ia[i]], vectors[ib[i]]));
  } else {
    fail(500, "model '" + model.name + "' has no scoring queue", "model", "internal");
  }
  check_finite(out.scores, model.name);
  return out;
}

void handle_rerank(const RouteContext& ctx, const std::string& endpoint, const httplib::Request& req,
                   httplib::Response& res) {
  const Json body = parse_json_body(req, ctx.options.max_json_body_bytes);
  auto parsed = parse_rerank_request(body, ctx.options.max_inputs);
  if (!parsed.ok()) {
    if (auto m = body.find("model"); m != body.end() && m->is_string()) resolve_scorer(ctx, *m, endpoint);
    fail(parsed.error());
  }
  const RerankRequest& r = parsed.value();
  auto model = resolve_scorer(ctx, r.model, endpoint);
  std::vector<std::string_view> queries(r.documents.size(), r.query), docs(r.documents.begin(), r.documents.end());
  const std::string docs_key = r.tei ? "texts" : "documents";
  auto scored = score_pairs(
      ctx, *model, queries, docs, r.truncate_to, r.raw_scores, req,
      [&](std::size_t i) { return "the pair of query and " + docs_key + "[" + std::to_string(i) + "]"; },
      [&](bool second, std::size_t i) { return second ? docs_key + "[" + std::to_string(i) + "]" : std::string("query"); });

  std::vector<std::size_t> order(r.documents.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t x, std::size_t y) { return scored.scores[x] > scored.scores[y]; });
  if (r.top_n) order.resize(*r.top_n);

  Json results = Json::array();
  for (std::size_t i : order) {
    Json item;
    item["index"] = i;
    if (r.tei) {
      item["score"] = scored.scores[i];
      if (r.return_documents) item["text"] = r.documents[i];
    } else {
      item["relevance_score"] = scored.scores[i];
      if (r.return_documents) item["document"] = {{"text", r.documents[i]}};
    }
    results.push_back(std::move(item));
  }
  res.status = 200;
  if (r.tei) {
    res.set_content(dump(results), "application/json");
    return;
  }
  Json out = {{"id", response_id("rerank")}, {"model", model->name}, {"results", std::move(results)},
              {"usage", usage(scored.tokens)}};
  res.set_content(dump(out), "application/json");
}

void handle_score(const RouteContext& ctx, const std::string& endpoint, const httplib::Request& req,
                  httplib::Response& res) {
  const Json body = parse_json_body(req, ctx.options.max_json_body_bytes);
  auto parsed = parse_score_request(body, ctx.options.max_inputs);
  if (!parsed.ok()) {
    if (auto m = body.find("model"); m != body.end() && m->is_string()) resolve_scorer(ctx, *m, endpoint);
    fail(parsed.error());
  }
  const ScoreRequest& r = parsed.value();
  auto model = resolve_scorer(ctx, r.model, endpoint);
  std::vector<std::string_view> a, b;
  for (auto [i, j] : r.pairs) {
    a.push_back(r.text_1[i]);
    b.push_back(r.text_2[j]);
  }
  auto name = [&](bool second, std::size_t k) {
    const auto& side = second ? r.text_2 : r.text_1;
    const char* key = second ? "text_2" : "text_1";
    return side.size() == 1 ? std::string(key) : std::string(key) + "[" + std::to_string(k) + "]";
  };
  auto scored = score_pairs(
      ctx, *model, a, b, r.truncate_to, false, req,
      [&](std::size_t p) { return "the pair of " + name(false, r.pairs[p].first) + " and " + name(true, r.pairs[p].second); },
      [&](bool second, std::size_t p) { return name(second, second ? r.pairs[p].second : r.pairs[p].first); });
  Json data = Json::array();
  for (std::size_t p = 0; p < scored.scores.size(); ++p)
    data.push_back({{"index", p}, {"object", "score"}, {"score", scored.scores[p]}});
  Json out = {{"id", response_id("score")}, {"object", "list"}, {"created", unix_now()}, {"model", model->name},
              {"data", std::move(data)}, {"usage", usage(scored.tokens)}};
  res.status = 200;
  res.set_content(dump(out), "application/json");
}

void handle_classify(const RouteContext& ctx, const std::string& endpoint, const httplib::Request& req,
                     httplib::Response& res) {
  const Json body = parse_json_body(req, ctx.options.max_json_body_bytes);
  auto parsed = parse_classify_request(body, ctx.options.max_inputs);
  if (!parsed.ok()) {
    if (auto m = body.find("model"); m != body.end() && m->is_string()) resolve_model(ctx, *m, Task::kClassify, endpoint);
    fail(parsed.error());
  }
  const ClassifyRequest& r = parsed.value();
  auto model = resolve_model(ctx, r.model, Task::kClassify, endpoint);
  if (!model->classifier || !model->classify_scheduler)
    fail(500, "model '" + r.model + "' declares the classify task but has no classifier queue", "model", "internal");
  const engine::ClassifierFacts& facts = *model->classifier;
  const int limit = sequence_limit(facts.max_input_tokens, ctx.options);
  const std::optional<int> cut = truncation_length(r.truncate_to, limit);
  auto where = [&](std::size_t i) {
    return r.inputs.size() == 1 ? std::string("input") : "input[" + std::to_string(i) + "]";
  };
  std::vector<std::vector<int32_t>> seqs;
  for (std::size_t i = 0; i < r.inputs.size(); ++i) {
    formats::EncodeOptions options;
    options.add_special_tokens = true;
    options.max_length = cut;
    auto ids = facts.tokenizer->encode(r.inputs[i], options);
    if (!ids.ok()) {
      Error e = ids.error();
      e.message = where(i) + ": " + e.message;
      e.param = "input";
      fail(e);
    }
    if (static_cast<int>(ids->size()) > facts.max_input_tokens)
      fail(400,
           where(i) + " has " + std::to_string(ids->size()) + " tokens, more than the " +
               std::to_string(facts.max_input_tokens) + " tokens model '" + r.model +
               "' accepts; shorten it or pass \"truncate\": true",
           "input", "too_many_tokens");
    if (ids->empty()) fail(400, where(i) + " produced no tokens", "input");
    seqs.push_back(std::move(ids).value());  // segment 0: pack_segment(id, 0) == id
  }
  check_server_token_limits(seqs, ctx.options, where, "shorten it or pass \"truncate\": true");
  auto rows = run_sequences(ctx, *model->classify_scheduler, seqs, req);
  // Probabilities as a classification pipeline gives them: sigmoid for one label or multi-label heads,
  // softmax over the labels otherwise.
  const std::size_t n = facts.labels.size();
  const bool use_sigmoid = n == 1 || facts.activation == models::ScoreActivation::kSigmoid;
  Json data = Json::array();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& logits = rows[i];
    if (logits.size() != n) fail(500, "model '" + r.model + "' returned the wrong number of logits", {}, "internal");
    std::vector<float> probs = use_sigmoid ? logits : softmax(logits);
    if (use_sigmoid)
      for (float& p : probs) p = sigmoid(p);
    check_finite(probs, r.model);
    const std::size_t best = static_cast<std::size_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    data.push_back({{"index", i}, {"label", facts.labels[best]}, {"probs", probs}, {"num_classes", n}});
  }
  Json out = {{"id", response_id("classify")}, {"object", "list"}, {"created", unix_now()}, {"model", model->name},
              {"data", std::move(data)}, {"usage", usage(token_count(seqs))}};
  res.status = 200;
  res.set_content(dump(out), "application/json");
}

}  // namespace

void register_score_routes(RouteContext& ctx) {
  for (const char* path : {"/v1/rerank", "/rerank", "/v2/rerank"}) {
    const std::string endpoint = path;
    ctx.router.post(path, [&ctx, endpoint](const httplib::Request& req, httplib::Response& res) {
      handle_rerank(ctx, endpoint, req, res);
    });
  }
  for (const char* path : {"/v1/score", "/score"}) {
    const std::string endpoint = path;
    ctx.router.post(path, [&ctx, endpoint](const httplib::Request& req, httplib::Response& res) {
      handle_score(ctx, endpoint, req, res);
    });
  }
}

void register_classify_routes(RouteContext& ctx) {
  for (const char* path : {"/v1/classify", "/classify"}) {
    const std::string endpoint = path;
    ctx.router.post(path, [&ctx, endpoint](const httplib::Request& req, httplib::Response& res) {
      handle_classify(ctx, endpoint, req, res);
    });
  }
}

}  // namespace fathom::server
