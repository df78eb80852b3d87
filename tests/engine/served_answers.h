#pragma once
// Answers from models served by a ModelManager, for the engine tests that load real fixtures: an
// embedding fixture's reference cases, a batch of them through the model's EmbedScheduler, and one
// transcription through its SpeechScheduler. Failures come back as an empty result with `error` set, so
// callers on worker threads can report them.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model_manager.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::testing {

struct EmbeddingCase {
  std::vector<int32_t> ids;
  std::vector<float> embedding;
};

// The non-truncated cases of tests/fixtures/models/<name>.reference.json.
inline std::vector<EmbeddingCase> reference_cases(const std::string& name) {
  const auto j = read_json(fixture("models/" + name + ".reference.json"));
  std::vector<EmbeddingCase> out;
  for (const auto& c : j.at("cases"))
    if (!c.value("truncated", false))
      out.push_back({c.at("token_ids").get<std::vector<int32_t>>(), c.at("embedding").get<std::vector<float>>()});
  return out;
}

// Every case in one submission; one embedding per case, or empty with `error` set.
inline std::vector<std::vector<float>> embed_all(const engine::LoadedModel& m, const std::vector<EmbeddingCase>& cases,
                                                 std::string* error) {
  std::vector<std::vector<int32_t>> seqs;
  for (const auto& c : cases) seqs.push_back(c.ids);
  auto futures = m.embed_scheduler->submit(seqs);
  if (!futures.ok()) {
    *error = futures.error().message;
    return {};
  }
  std::vector<std::vector<float>> out;
  for (auto& f : futures.value()) {
    auto r = f.get();
    if (!r.ok()) {
      *error = r.error().message;
      return {};
    }
    out.push_back(std::move(r).value());
  }
  return out;
}

// One transcription through the scheduler (device log-mel, continuous batching): its tokens, or empty
// with `error` set.
inline std::vector<int32_t> transcribe(const engine::LoadedModel& m, const std::vector<float>& samples,
                                       const models::SpeechOptions& options, std::string* error) {
  auto req = m.speech_scheduler->start(samples, options);
  if (!req.ok()) {
    *error = req.error().message;
    return {};
  }
  while (!req.value()->done()) req.value()->wait(0, std::chrono::milliseconds(100));
  auto r = req.value()->result();
  if (!r.ok()) {
    *error = r.error().message;
    return {};
  }
  return r->tokens;
}

}  // namespace fathom::testing
