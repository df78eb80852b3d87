#pragma once
// Continuous batching over a DecoderLm: requests join and leave between steps. Each step() runs ONE forward
// pass holding every running request's decode position (its last token) and the whole prompts of waiting
// requests admitted this step (prefill), packed together; it samples one token per request and reports it.
//
// Admission (first come, first served): a waiting request joins when the step's new positions stay within
// GeneratorOptions::max_batch_tokens (a prompt longer than the budget joins alone when nothing else
// prefills), the running requests stay within max_sequences, and the KV cache has the blocks for its
// prompt plus those the running requests need this step. A request whose prompt can never fit the cache
// fails at submit (kOutOfMemory). When running requests outgrow the cache, the most recently admitted one
// finishes with kError (kOutOfMemory) and its blocks are freed (no preemption or recomputation yet).
//
// Stops: a sampled token in the request's stop ids (default: the config's eos ids) finishes it with kStop
// (the event carries that token; callers drop it from the text); max_completion_tokens, or reaching
// max_position_embeddings, finishes it with kLength.
//
// Not thread-safe: one thread (the device worker) calls everything.
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "base/error.h"
#include "models/decoder/decoder_lm.h"
#include "models/decoder/sampler.h"

namespace fathom::models::decoder {

// An owned prompt piece: token ids or input embeddings (f32 [n, hidden]); exactly one is non-empty.
struct PromptPart {
  std::vector<int32_t> ids;
  std::vector<float> embeddings;
};

struct GenerationRequest {
  std::vector<PromptPart> prompt;
  int max_completion_tokens = 16;      // > 0
  std::optional<std::vector<int32_t>> stop_token_ids;  // unset: DecoderConfig::eos_token_ids
  SamplingParams sampling;
};

enum class FinishReason { kNone, kStop, kLength, kError };

// One step's outcome for one request: a new token (token >= 0) and whether the request finished. A request
// that fails (kError) carries the error and no token.
struct GenerationEvent {
  int request = -1;
  int32_t token = -1;
  FinishReason finish = FinishReason::kNone;
  std::optional<Error> error;
};

struct GeneratorOptions {
  int max_batch_tokens = 4096;  // new positions in one forward pass (decode rows + admitted prompts)
  int max_sequences = 64;       // running requests at once
};

class Generator {
 public:
  Generator(DecoderLm& lm, GeneratorOptions options = {});
  ~Generator();

  // Queues a request; returns its id. kInvalidArgument for an empty prompt, bad sampling parameters, a
  // non-positive max_completion_tokens, ids outside the vocabulary, embeddings not rows of hidden_size, or
  // a prompt over max_position_embeddings; kOutOfMemory when the prompt alone exceeds the whole KV cache.
  Result<int> submit(GenerationRequest request);
  // Removes a request (waiting or running) and frees its cache blocks; unknown ids are ignored.
  void cancel(int request);
  // One forward pass and one token per running request; empty when idle. A failing forward pass fails the
  // requests of that pass (each gets a kError event) and the generator carries on.
  Result<std::vector<GenerationEvent>> step();

  bool idle() const { return running_.empty() && waiting_.empty(); }
  int running() const { return static_cast<int>(running_.size()); }
  int waiting() const { return static_cast<int>(waiting_.size()); }

 private:
  struct Active {
    int id = -1;
    GenerationRequest request;
    int sequence = -1;
    int generated = 0;
    int32_t last = -1;
    std::unique_ptr<Sampler> sampler;
  };
  int64_t prompt_positions(const GenerationRequest& r) const;
  void finish(std::size_t running_index);

  DecoderLm& lm_;
  GeneratorOptions options_;
  int next_id_ = 0;
  std::deque<Active> waiting_;
  std::vector<Active> running_;
};

}  // namespace fathom::models::decoder
