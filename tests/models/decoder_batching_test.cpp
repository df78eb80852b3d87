// Decoder-LLM batching: sequences of different prompt lengths prefilled together in one packed forward pass,
// and decode steps with sequences joining and leaving (continuous batching), equal running each alone. Also
// the paged KV cache's block accounting and the generator's behaviour when the cache runs short.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "models/decoder/generator.h"
#include "support/decoder_fixture.h"

namespace fathom::models::decoder {
namespace {

using fathom::testing::DecoderFixture;
using fathom::testing::fixture_prompt;
using fathom::testing::load_decoder_fixture;

const char* const kFixture = "funasr-nano-random-b";  // untied lm_head, grouped-query attention (4 q / 2 kv heads)

SequenceInput input_of(int seq, const std::vector<PromptPart>& prompt) {
  SequenceInput in{seq, {}};
  for (const auto& p : prompt) in.spans.push_back(p.ids.empty() ? InputSpan::embeds(p.embeddings) : InputSpan::tokens(p.ids));
  return in;
}

std::vector<PromptPart> ids_prompt(std::vector<int32_t> ids) {
  PromptPart p;
  p.ids = std::move(ids);
  return {p};
}

std::vector<float> logits_alone(DecoderLm& lm, const std::vector<PromptPart>& prompt) {
  const int seq = lm.add_sequence();
  auto out = lm.forward({input_of(seq, prompt)});
  EXPECT_TRUE(out.ok()) << out.error().message;
  std::vector<float> v = out.ok() ? std::vector<float>(out.value().logits.begin(), out.value().logits.end()) : std::vector<float>{};
  lm.release_sequence(seq);
  return v;
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

TEST(DecoderBatching, PackedPrefillEqualsSingle) {
  DecoderFixture f = load_decoder_fixture(kFixture, 4 << 20, 8);
  ASSERT_TRUE(f.lm);
  DecoderLm& lm = *f.lm;
  const std::vector<std::vector<PromptPart>> prompts = {fixture_prompt(f, "jfk_prompt"), fixture_prompt(f, "tones_default"),
                                                        ids_prompt({5, 17, 42}), fixture_prompt(f, "jfk_default")};
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) alone.push_back(logits_alone(lm, p));
  std::vector<SequenceInput> batch;
  for (const auto& p : prompts) batch.push_back(input_of(lm.add_sequence(), p));
  auto out = lm.forward(batch, ForwardOptions{true, true});
  ASSERT_TRUE(out.ok()) << out.error().message;
  const std::size_t V = static_cast<std::size_t>(lm.vocab_size());
  ASSERT_EQ(out.value().logits.size(), prompts.size() * V);
  ASSERT_EQ(out.value().last_hidden.size(), prompts.size() * static_cast<std::size_t>(lm.hidden_size()));
  for (std::size_t b = 0; b < prompts.size(); ++b)
    EXPECT_LT(max_abs_diff(out.value().logits.subspan(b * V, V), alone[b]), 1e-4) << "sequence " << b;
  // One decode step for all four together equals one step of each alone.
  std::vector<SequenceInput> step;
  const int32_t next[] = {3, 99, 7, 250};
  for (std::size_t b = 0; b < batch.size(); ++b)
    step.push_back(SequenceInput{batch[b].sequence, {InputSpan::tokens(std::span<const int32_t>(&next[b], 1))}});
  auto stepped = lm.forward(step);
  ASSERT_TRUE(stepped.ok()) << stepped.error().message;
  const std::vector<float> batched(stepped.value().logits.begin(), stepped.value().logits.end());
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    const int seq = lm.add_sequence();
    ASSERT_TRUE(lm.forward({input_of(seq, prompts[b])}).ok());
    auto one = lm.forward({SequenceInput{seq, {InputSpan::tokens(std::span<const int32_t>(&next[b], 1))}}});
    ASSERT_TRUE(one.ok()) << one.error().message;
    EXPECT_LT(max_abs_diff(std::span<const float>(batched).subspan(b * V, V), one.value().logits), 1e-4) << "sequence " << b;
    EXPECT_EQ(lm.cache().length(seq), lm.cache().length(batch[b].sequence));
    lm.release_sequence(seq);
  }
}

// Last-token hidden states (the pooling of embedding models) of a packed batch equal each sequence alone.
TEST(DecoderBatching, LastHiddenOfPackedBatchEqualsSingle) {
  DecoderFixture f = load_decoder_fixture(kFixture);
  ASSERT_TRUE(f.lm);
  DecoderLm& lm = *f.lm;
  const std::vector<std::vector<PromptPart>> prompts = {ids_prompt({5, 17, 42, 9}), fixture_prompt(f, "tones_default"),
                                                        ids_prompt({300})};
  const std::size_t H = static_cast<std::size_t>(lm.hidden_size());
  std::vector<std::vector<float>> alone;
  for (const auto& p : prompts) {
    const int seq = lm.add_sequence();
    auto out = lm.forward({input_of(seq, p)}, ForwardOptions{false, true});
    ASSERT_TRUE(out.ok()) << out.error().message;
    EXPECT_TRUE(out.value().logits.empty());
    alone.emplace_back(out.value().last_hidden.begin(), out.value().last_hidden.end());
    lm.release_sequence(seq);
  }
  std::vector<SequenceInput> batch;
  for (const auto& p : prompts) batch.push_back(input_of(lm.add_sequence(), p));
  auto out = lm.forward(batch, ForwardOptions{false, true});
  ASSERT_TRUE(out.ok()) << out.error().message;
  ASSERT_EQ(out.value().last_hidden.size(), prompts.size() * H);
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    ASSERT_EQ(alone[b].size(), H);
    EXPECT_LT(max_abs_diff(out.value().last_hidden.subspan(b * H, H), alone[b]), 1e-5) << "sequence " << b;
  }
}

// Requests submitted at different steps, with different lengths, sampling settings and stop conditions, run
// through one generator: every request's tokens equal the same request run alone.
TEST(DecoderBatching, ContinuousBatchingEqualsSingle) {
  DecoderFixture f = load_decoder_fixture(kFixture, 4 << 20, 4);
  ASSERT_TRUE(f.lm);
  DecoderLm& lm = *f.lm;
  struct Plan {
    int submit_step;
    std::vector<PromptPart> prompt;
    int max_tokens;
    SamplingParams sampling;
  };
  SamplingParams sampled;
  sampled.temperature = 0.9f;
  sampled.top_k = 40;
  sampled.top_p = 0.9f;
  sampled.seed = 1234;
  SamplingParams hot;
  hot.temperature = 1.5f;
  hot.seed = 7;
  std::vector<Plan> plans = {{0, fixture_prompt(f, "jfk_prompt"), 12, {}},
                             {0, fixture_prompt(f, "tones_default"), 3, {}},
                             {2, ids_prompt({801, 82, 88, 699, 198}), 9, sampled},
                             {3, fixture_prompt(f, "jfk_language_en"), 6, {}},
                             {5, fixture_prompt(f, "tones_default"), 10, hot},
                             {9, ids_prompt({640, 468}), 4, {}}};
  auto request = [&](const Plan& p) {
    GenerationRequest r;
    r.prompt = p.prompt;
    r.max_completion_tokens = p.max_tokens;
    r.sampling = p.sampling;
    r.stop_token_ids = std::vector<int32_t>{};  // run to the length limit (no early stop)
    return r;
  };
  std::vector<std::vector<int32_t>> alone;
  for (const Plan& p : plans) {
    Generator g(lm);
    auto submitted = g.submit(request(p));
    ASSERT_TRUE(submitted.ok()) << submitted.error().message;
    std::vector<int32_t> tokens;
    while (!g.idle()) {
      auto ev = g.step();
      ASSERT_TRUE(ev.ok());
      for (const auto& e : ev.value()) tokens.push_back(e.token);
    }
    EXPECT_EQ(static_cast<int>(tokens.size()), p.max_tokens);
    alone.push_back(tokens);
  }
  Generator g(lm);
  std::map<int, std::size_t> plan_of;
  std::map<std::size_t, std::vector<int32_t>> together;
  int max_running = 0;
  for (int step = 0; step < 100 && (step <= 9 || !g.idle()); ++step) {
    for (std::size_t i = 0; i < plans.size(); ++i)
      if (plans[i].submit_step == step) {
        auto id = g.submit(request(plans[i]));
        ASSERT_TRUE(id.ok()) << id.error().message;
        plan_of[id.value()] = i;
      }
    auto ev = g.step();
    ASSERT_TRUE(ev.ok()) << ev.error().message;
    max_running = std::max(max_running, g.running() + static_cast<int>(std::count_if(
                                                          ev.value().begin(), ev.value().end(),
                                                          [](const GenerationEvent& e) { return e.finish != FinishReason::kNone; })));
    for (const auto& e : ev.value()) {
      EXPECT_FALSE(e.error) << e.error->message;
      together[plan_of.at(e.request)].push_back(e.token);
    }
  }
  EXPECT_TRUE(g.idle());
  EXPECT_GE(max_running, 3);  // sequences really shared steps
  for (std::size_t i = 0; i < plans.size(); ++i) EXPECT_EQ(together[i], alone[i]) << "request " << i;
  EXPECT_EQ(lm.cache().free_blocks(), lm.cache().num_blocks());
}

// A token budget smaller than the prompts admits them one per step; results stay equal.
TEST(DecoderBatching, TokenBudgetAdmitsPromptsOverSeveralSteps) {
  DecoderFixture f = load_decoder_fixture(kFixture);
  ASSERT_TRUE(f.lm);
  const auto& cases = f.reference["generate"]["cases"];
  Generator g(*f.lm, GeneratorOptions{64, 8});
  std::map<int, std::string> key_of;
  for (const char* key : {"jfk_default", "tones_default", "jfk_prompt"}) {
    GenerationRequest r;
    r.prompt = fixture_prompt(f, key);
    r.max_completion_tokens = 12;
    auto id = g.submit(std::move(r));
    ASSERT_TRUE(id.ok());
    key_of[id.value()] = key;
  }
  std::map<std::string, std::vector<int32_t>> got;
  int steps = 0;
  while (!g.idle() && steps < 100) {
    auto ev = g.step();
    ASSERT_TRUE(ev.ok());
    if (steps == 0) EXPECT_EQ(g.waiting(), 2);  // the first prompt (over the budget) was admitted alone
    for (const auto& e : ev.value()) got[key_of[e.request]].push_back(e.token);
    ++steps;
  }
  for (const auto& [id, key] : key_of) EXPECT_EQ(got[key], cases[key]["greedy_tokens"].get<std::vector<int32_t>>()) << key;
}

TEST(DecoderBatching, CacheShortageFailsTheNewestRequestOnly) {
  // 1 KiB per 4-position block (2 layers x k|v x 4 x 40 floats = 2560 bytes: use the real size).
  DecoderFixture probe = load_decoder_fixture(kFixture, 1 << 20, 4);
  ASSERT_TRUE(probe.lm);
  const std::size_t block = probe.lm->cache().bytes_per_block();
  EXPECT_EQ(block, 2u * 2 * 4 * 40 * sizeof(float));
  EXPECT_EQ(probe.lm->cache().num_blocks(), static_cast<int>((1u << 20) / block));
  // Room for 12 blocks = 48 positions.
  DecoderFixture f = load_decoder_fixture(kFixture, 12 * block + block / 2, 4);
  ASSERT_TRUE(f.lm);
  ASSERT_EQ(f.lm->cache().num_blocks(), 12);
  Generator g(*f.lm);
  GenerationRequest too_big;
  too_big.prompt = fixture_prompt(f, "jfk_default");  // 92 audio rows + 42 ids
  auto refused = g.submit(std::move(too_big));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kOutOfMemory);
  // Two prompts of 20 positions (5 blocks each) fit; decoding outgrows the pool, and the newest gives way.
  std::vector<int32_t> ids(20);
  for (int i = 0; i < 20; ++i) ids[static_cast<std::size_t>(i)] = 100 + i;
  int first = -1, second = -1;
  for (int* id : {&first, &second}) {
    GenerationRequest r;
    r.prompt = ids_prompt(ids);
    r.max_completion_tokens = 20;
    r.stop_token_ids = std::vector<int32_t>{};
    auto s = g.submit(std::move(r));
    ASSERT_TRUE(s.ok());
    *id = s.value();
  }
  std::vector<int32_t> first_tokens;
  bool second_failed = false;
  while (!g.idle()) {
    auto ev = g.step();
    ASSERT_TRUE(ev.ok());
    for (const auto& e : ev.value()) {
      if (e.request == first) {
        EXPECT_FALSE(e.error);
        first_tokens.push_back(e.token);
      } else if (e.error) {
        EXPECT_EQ(e.request, second);
        EXPECT_EQ(e.error->code, ErrorCode::kOutOfMemory);
        second_failed = true;
      }
    }
  }
  EXPECT_TRUE(second_failed);
  EXPECT_EQ(first_tokens.size(), 20u);
  EXPECT_EQ(f.lm->cache().free_blocks(), 12);
  // The survivor's tokens equal its run alone.
  Generator alone(*f.lm);
  GenerationRequest r;
  r.prompt = ids_prompt(ids);
  r.max_completion_tokens = 20;
  r.stop_token_ids = std::vector<int32_t>{};
  ASSERT_TRUE(alone.submit(std::move(r)).ok());
  std::vector<int32_t> solo;
  while (!alone.idle()) {
    auto ev = alone.step();
    ASSERT_TRUE(ev.ok());
    for (const auto& e : ev.value()) solo.push_back(e.token);
  }
  EXPECT_EQ(first_tokens, solo);
}

TEST(DecoderBatching, ForwardRejectsBadInputsWithoutChangingTheCache) {
  DecoderFixture f = load_decoder_fixture(kFixture);
  ASSERT_TRUE(f.lm);
  DecoderLm& lm = *f.lm;
  const int seq = lm.add_sequence();
  const int32_t bad_id = lm.vocab_size();
  auto r1 = lm.forward({SequenceInput{seq, {InputSpan::tokens(std::span<const int32_t>(&bad_id, 1))}}});
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().code, ErrorCode::kInvalidArgument);
  const std::vector<float> ragged(static_cast<std::size_t>(lm.hidden_size()) + 1, 0.0f);
  EXPECT_FALSE(lm.forward({SequenceInput{seq, {InputSpan::embeds(ragged)}}}).ok());
  EXPECT_FALSE(lm.forward({SequenceInput{seq, {}}}).ok());
  const int32_t ok_id = 5;
  EXPECT_FALSE(lm.forward({SequenceInput{seq, {InputSpan::tokens(std::span<const int32_t>(&ok_id, 1))}},
                           SequenceInput{seq, {InputSpan::tokens(std::span<const int32_t>(&ok_id, 1))}}})
                   .ok());
  EXPECT_FALSE(lm.forward({SequenceInput{seq + 100, {InputSpan::tokens(std::span<const int32_t>(&ok_id, 1))}}}).ok());
  EXPECT_EQ(lm.cache().length(seq), 0);
  EXPECT_EQ(lm.cache().free_blocks(), lm.cache().num_blocks());
  GenerationRequest r;
  r.prompt = ids_prompt({1});
  r.sampling.top_p = 0.0f;
  Generator g(lm);
  auto s = g.submit(std::move(r));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().param, "top_p");
}

TEST(DecoderKvCache, BlocksBudgetAndRelease) {
  MemoryAccount account("kv-test");
  KvCacheShape shape{2, 8, 4, DType::kF32};
  auto made = PagedKvCache::create(cpu_allocator(), &account, shape, 10 * 2 * 2 * 4 * 8 * 4 + 100);
  ASSERT_TRUE(made.ok()) << made.error().message;
  PagedKvCache c = std::move(made).value();
  EXPECT_EQ(c.num_blocks(), 10);
  EXPECT_EQ(account.in_use(), 10 * c.bytes_per_block());
  const int a = c.add_sequence(), b = c.add_sequence();
  ASSERT_TRUE(c.reserve(a, 9).ok());  // 3 blocks
  EXPECT_EQ(c.block_table(a).size(), 3u);
  EXPECT_EQ(c.capacity(a), 12);
  ASSERT_TRUE(c.reserve(b, 28).ok());  // 7 blocks
  EXPECT_EQ(c.free_blocks(), 0);
  auto full = c.reserve(a, 13);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::kOutOfMemory);
  EXPECT_EQ(c.block_table(a).size(), 3u);  // unchanged on failure
  // Slots follow the block table.
  EXPECT_EQ(c.slot(a, 5), c.block_table(a)[1] * 4 + 1);
  c.release(b);
  EXPECT_EQ(c.free_blocks(), 7);
  EXPECT_FALSE(c.valid(b));
  EXPECT_EQ(c.live_sequences(), 1);
  EXPECT_TRUE(c.reserve(a, 13).ok());
  auto none = PagedKvCache::create(cpu_allocator(), &account, shape, 100);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kOutOfMemory);
  MemoryAccount tight("kv-tight", 1000);
  auto over = PagedKvCache::create(cpu_allocator(), &tight, shape, 1 << 20);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kOutOfMemory);
}

}  // namespace
}  // namespace fathom::models::decoder
