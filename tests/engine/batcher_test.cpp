#include <gtest/gtest.h>

#include <vector>

#include "engine/batcher.h"
#include "engine/embedding_postprocess.h"

namespace fathom::engine {
namespace {

std::size_t plan(const std::vector<int>& lengths, int budget, int max_size = 1000) {
  return plan_batch(lengths.begin(), lengths.end(), [](int n) { return n; }, BatchLimits{budget, max_size});
}

TEST(Batcher, EmptyQueueFormsNoBatch) { EXPECT_EQ(plan({}, 100), 0u); }

TEST(Batcher, TakesWhatFitsTheTokenBudget) {
  EXPECT_EQ(plan({10, 10, 10, 10}, 40), 4u);
  EXPECT_EQ(plan({10, 10, 10, 10}, 39), 3u);
  // Ragged cost: a long sequence costs its own tokens, not those of padding the short ones to its length.
  EXPECT_EQ(plan({5, 5, 5, 30}, 64), 4u);   // 45 tokens
  EXPECT_EQ(plan({5, 30, 5, 30}, 64), 3u);  // 40 fit; the second 30 would make 70
  EXPECT_EQ(plan({30, 30, 5}, 64), 2u);     // 65 tokens would pass the budget by one
}

TEST(Batcher, NeverReordersAndAlwaysTakesOne) {
  EXPECT_EQ(plan({100, 1, 1}, 50), 1u);  // an oversize head runs alone
  EXPECT_EQ(plan({1, 100}, 50), 1u);     // a long sequence waits for the next batch
}

TEST(Batcher, RespectsTheSizeCap) { EXPECT_EQ(plan({1, 1, 1, 1, 1}, 100, 3), 3u); }

TEST(EmbeddingPostprocess, TruncatesThenNormalises) {
  std::vector<float> v{3, 4, 12};
  finish_embedding(v, 2, true);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  EXPECT_NEAR(v[1], 0.8f, 1e-6);
  std::vector<float> w{3, 4, 12};
  finish_embedding(w, std::nullopt, false);
  EXPECT_EQ(w, (std::vector<float>{3, 4, 12}));
  std::vector<float> z{0, 0};
  finish_embedding(z, std::nullopt, true);
  EXPECT_EQ(z, (std::vector<float>{0, 0}));
}

TEST(EmbeddingPostprocess, ChecksDimensions) {
  EXPECT_TRUE(check_dimensions("m", 16, true, {8, 16, 32}, 32).ok());
  EXPECT_TRUE(check_dimensions("m", 32, true, {8, 16}, 32).ok());
  auto bad = check_dimensions("m", 12, true, {8, 16, 32}, 32);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("one of 8, 16, 32"), std::string::npos) << bad.error().message;
  EXPECT_EQ(bad.error().param, "dimensions");
  auto none = check_dimensions("roberta", 8, false, {}, 32);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("'roberta' does not support dimensions"), std::string::npos);
  EXPECT_TRUE(check_dimensions("m", 5, true, {32}, 32).ok());
  EXPECT_FALSE(check_dimensions("m", 33, true, {32}, 32).ok());
  EXPECT_FALSE(check_dimensions("m", 0, true, {32}, 32).ok());
}

TEST(EmbeddingPostprocess, LexicalWeightsKeepEachTokensLargestPositiveWeightSortedById) {
  const std::vector<int32_t> ids{0, 57, 12, 57, 9, 2};
  const std::vector<float> w{0.0f, 0.25f, 0.5f, 0.75f, 0.0f, 0.0f};
  const auto got = lexical_weights(ids, w);
  ASSERT_EQ(got.size(), 2u);  // zero weights (relu, left-out specials) are dropped
  EXPECT_EQ(got[0], (std::pair<int32_t, float>{12, 0.5f}));
  EXPECT_EQ(got[1], (std::pair<int32_t, float>{57, 0.75f}));  // the larger of its two positions
  EXPECT_TRUE(lexical_weights({}, {}).empty());
}

TEST(EmbeddingPostprocess, MultiVectorsSplitRowsAndNormaliseEachWhenAsked) {
  const std::vector<float> rows{3, 4, 0, 2};
  const auto unit = multi_vectors(rows, 2, true);
  ASSERT_EQ(unit.size(), 2u);
  EXPECT_NEAR(unit[0][0], 0.6f, 1e-6);
  EXPECT_NEAR(unit[0][1], 0.8f, 1e-6);
  EXPECT_NEAR(unit[1][1], 1.0f, 1e-6);
  const auto raw = multi_vectors(rows, 2, false);
  EXPECT_EQ(raw[0], (std::vector<float>{3, 4}));
  EXPECT_TRUE(multi_vectors({}, 2, true).empty());
  EXPECT_TRUE(multi_vectors(rows, 0, true).empty());
}

}  // namespace
}  // namespace fathom::engine
