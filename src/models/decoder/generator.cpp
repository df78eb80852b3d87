#include "models/decoder/generator.h"

#include <algorithm>
#include <string>

namespace fathom::models::decoder {

Generator::Generator(DecoderLm& lm, GeneratorOptions options) : lm_(lm), options_(options) {}

Generator::~Generator() {
  for (Active& a : running_) lm_.release_sequence(a.sequence);
}

int64_t Generator::prompt_positions(const GenerationRequest& r) const {
  int64_t n = 0;
  for (const PromptPart& p : r.prompt)
    n += static_cast<int64_t>(p.ids.size()) + static_cast<int64_t>(p.embeddings.size()) / lm_.hidden_size();
  return n;
}

Result<int> Generator::submit(GenerationRequest request) {
  FATHOM_TRY(validate_sampling(request.sampling));
  if (request.max_completion_tokens <= 0)
    return make_error(ErrorCode::kInvalidArgument, "max_completion_tokens must be positive", "max_completion_tokens");
  const int vocab = lm_.vocab_size();
  for (const PromptPart& p : request.prompt) {
    if (!p.ids.empty() && !p.embeddings.empty())
      return make_error(ErrorCode::kInvalidArgument, "a prompt part holds both token ids and embeddings");
    for (int32_t id : p.ids)
      if (id < 0 || id >= vocab)
        return make_error(ErrorCode::kInvalidArgument, "prompt token id " + std::to_string(id) +
                                                           " outside the vocabulary of " + std::to_string(vocab));
    if (p.embeddings.size() % static_cast<std::size_t>(lm_.hidden_size()) != 0)
      return make_error(ErrorCode::kInvalidArgument, "prompt embeddings are not rows of hidden_size " +
                                                         std::to_string(lm_.hidden_size()));
  }
  const int64_t n = prompt_positions(request);
  if (n == 0) return make_error(ErrorCode::kInvalidArgument, "the prompt is empty");
  if (n >= lm_.config().max_position_embeddings)
    return make_error(ErrorCode::kInvalidArgument, "the prompt has " + std::to_string(n) +
                                                       " positions; max_position_embeddings is " +
                                                       std::to_string(lm_.config().max_position_embeddings));
  if (lm_.cache().blocks_for(n + 1) > lm_.cache().num_blocks())
    return make_error(ErrorCode::kOutOfMemory, "the prompt of " + std::to_string(n) + " positions does not fit the KV cache (" +
                                                   std::to_string(lm_.cache().num_blocks()) + " blocks of " +
                                                   std::to_string(lm_.cache().block_size()) + ")");
  Active a;
  a.id = next_id_++;
  a.sampler = std::make_unique<Sampler>(request.sampling);
  if (!request.stop_token_ids) request.stop_token_ids = std::vector<int32_t>(lm_.config().eos_token_ids.begin(),
                                                                             lm_.config().eos_token_ids.end());
  a.request = std::move(request);
  waiting_.push_back(std::move(a));
  return waiting_.back().id;
}

void Generator::cancel(int request) {
  auto w = std::find_if(waiting_.begin(), waiting_.end(), [&](const Active& a) { return a.id == request; });
  if (w != waiting_.end()) {
    waiting_.erase(w);
    return;
  }
  for (std::size_t i = 0; i < running_.size(); ++i)
    if (running_[i].id == request) {
      finish(i);
      return;
    }
}

void Generator::finish(std::size_t i) {
  lm_.release_sequence(running_[i].sequence);
  running_.erase(running_.begin() + static_cast<std::ptrdiff_t>(i));
}

Result<std::vector<GenerationEvent>> Generator::step() {
  std::vector<GenerationEvent> events;
  if (idle()) return events;
  const PagedKvCache& cache = lm_.cache();
  // Decode rows of the running requests; the most recent ones give way when the cache is short.
  int needed = 0;
  for (const Active& a : running_) needed += lm_.blocks_needed(a.sequence, 1);
  while (!running_.empty() && needed > cache.free_blocks()) {
    const std::size_t last = running_.size() - 1;
    needed -= lm_.blocks_needed(running_[last].sequence, 1);
    events.push_back(GenerationEvent{running_[last].id, -1, FinishReason::kError,
                                     make_error(ErrorCode::kOutOfMemory, "the KV cache is full")});
    finish(last);
  }
  const std::size_t decoding = running_.size();
  int64_t tokens = static_cast<int64_t>(decoding);
  // Admission of waiting prompts.
  bool prefilled = false;
  while (!waiting_.empty() && static_cast<int>(running_.size()) < options_.max_sequences) {
    const int64_t n = prompt_positions(waiting_.front().request);
    const bool alone_ok = !prefilled && n > options_.max_batch_tokens;
    if (tokens + n > options_.max_batch_tokens && !alone_ok) break;
    const int blocks = cache.blocks_for(n);
    if (needed + blocks > cache.free_blocks()) break;
    Active a = std::move(waiting_.front());
    waiting_.pop_front();
    a.sequence = lm_.add_sequence();
    needed += blocks;
    tokens += n;
    prefilled = true;
    running_.push_back(std::move(a));
  }
  if (running_.empty()) return events;
  std::vector<SequenceInput> inputs(running_.size());
  for (std::size_t i = 0; i < running_.size(); ++i) {
    Active& a = running_[i];
    inputs[i].sequence = a.sequence;
    if (i < decoding) {
      inputs[i].spans.push_back(InputSpan::tokens(std::span<const int32_t>(&a.last, 1)));
    } else {
      for (const PromptPart& p : a.request.prompt)
        inputs[i].spans.push_back(p.ids.empty() ? InputSpan::embeds(p.embeddings) : InputSpan::tokens(p.ids));
    }
  }
  // A batch of greedy requests takes the device's argmax ids: B ints cross to the host, not B x vocab logits.
  const bool all_greedy = std::all_of(running_.begin(), running_.end(), [](const Active& a) { return a.sampler->greedy(); });
  ForwardOptions fo;
  fo.logits = !all_greedy;
  fo.greedy_ids = all_greedy;
  Result<ForwardOutput> out = lm_.forward(inputs, fo);
  if (!out.ok()) {
    for (std::size_t i = running_.size(); i-- > 0;) {
      events.push_back(GenerationEvent{running_[i].id, -1, FinishReason::kError, out.error()});
      finish(i);
    }
    return events;
  }
  const std::size_t vocab = static_cast<std::size_t>(lm_.vocab_size());
  std::vector<std::size_t> done;
  for (std::size_t i = 0; i < running_.size(); ++i) {
    Active& a = running_[i];
    const int32_t token = all_greedy ? out.value().greedy_ids[i] : a.sampler->next(out.value().logits.subspan(i * vocab, vocab));
    a.last = token;
    ++a.generated;
    GenerationEvent e{a.id, token, FinishReason::kNone, std::nullopt};
    const auto& stops = *a.request.stop_token_ids;
    if (std::find(stops.begin(), stops.end(), token) != stops.end())
      e.finish = FinishReason::kStop;
    else if (a.generated >= a.request.max_completion_tokens ||
             cache.length(a.sequence) + 1 > lm_.config().max_position_embeddings)
      e.finish = FinishReason::kLength;
    if (e.finish != FinishReason::kNone) done.push_back(i);
    events.push_back(std::move(e));
  }
  for (auto it = done.rbegin(); it != done.rend(); ++it) finish(*it);
  return events;
}

}  // namespace fathom::models::decoder
