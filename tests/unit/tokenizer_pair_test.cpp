// Pair encoding (cross-encoder inputs) against transformers' fast tokenizers: ids and token type ids of
// tokenizer(a, b) and of truncation="only_second", on the committed tests/fixtures/tokenizers/
// pairs.reference.json (written by scripts/fixtures/make_rerankers.py) for a BERT WordPiece (BertProcessing
// types), a RoBERTa byte-level BPE and an XLM-R Unigram (RobertaProcessing: <s> A </s></s> B </s>).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "support/paths.h"

namespace fathom::formats {
namespace {

using Json = nlohmann::json;

const Json& pairs_reference() {
  static const Json ref = [] {
    std::ifstream in(testing::fixture("tokenizers/pairs.reference.json"));
    return Json::parse(in);
  }();
  return ref;
}

std::filesystem::path tokenizer_path(const std::string& rel) {
  const std::string shared = "shared/";
  if (rel.rfind(shared, 0) == 0) return testing::shared_dir() / rel.substr(shared.size());
  return testing::source_dir() / rel;
}

class TokenizerPair : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    ref_ = pairs_reference().at(GetParam());
    auto loaded = Tokenizer::load(tokenizer_path(ref_.at("tokenizer_json").get<std::string>()));
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    tok_ = loaded.value();
  }
  Json ref_;
  std::shared_ptr<const Tokenizer> tok_;
};

TEST_P(TokenizerPair, IdsAndTypeIdsOfEveryPair) {
  ASSERT_GE(ref_.at("cases").size(), 10u);
  for (const auto& c : ref_.at("cases")) {
    const auto a = c.at("a").get<std::string>(), b = c.at("b").get<std::string>();
    auto enc = tok_->encode_pair(a, b);
    ASSERT_TRUE(enc.ok()) << a << " / " << b << ": " << enc.error().message;
    EXPECT_EQ(enc->ids, c.at("ids").get<std::vector<int32_t>>()) << a << " / " << b;
    EXPECT_EQ(enc->type_ids, c.at("type_ids").get<std::vector<int32_t>>()) << a << " / " << b;
  }
}

TEST_P(TokenizerPair, OnlySecondTruncationKeepsTheQuery) {
  int checked = 0;
  for (const auto& c : ref_.at("truncation")) {
    if (c.at("strategy") != "only_second") continue;  // the only strategy the server uses
    ++checked;
    const auto a = c.at("a").get<std::string>(), b = c.at("b").get<std::string>();
    const int max_length = c.at("max_length").get<int>();
    auto enc = tok_->encode_pair(a, b, max_length);
    if (c.contains("error")) {  // the first text alone does not fit: refused, as transformers refuses it
      ASSERT_FALSE(enc.ok()) << a << " within " << max_length;
      EXPECT_EQ(enc.error().code, ErrorCode::kTooLarge);
      continue;
    }
    ASSERT_TRUE(enc.ok()) << enc.error().message;
    EXPECT_EQ(enc->ids, c.at("ids").get<std::vector<int32_t>>()) << "max_length " << max_length;
    EXPECT_EQ(enc->type_ids, c.at("type_ids").get<std::vector<int32_t>>()) << "max_length " << max_length;
    EXPECT_LE(static_cast<int>(enc->ids.size()), max_length);
  }
  EXPECT_GE(checked, 3);
}

TEST_P(TokenizerPair, QueryLongerThanTheLimitIsRefusedNotCut) {
  const auto& c = ref_.at("cases").at(0);
  const std::string a = c.at("a").get<std::string>();
  auto alone = tok_->encode(a);
  ASSERT_TRUE(alone.ok());
  // A limit the query and the pair's special tokens cannot fit in.
  const int too_small = static_cast<int>(alone->size());
  auto enc = tok_->encode_pair(a, c.at("b").get<std::string>(), too_small);
  ASSERT_FALSE(enc.ok());
  EXPECT_EQ(enc.error().code, ErrorCode::kTooLarge) << enc.error().message;
  EXPECT_GT(tok_->num_special_tokens_to_add_pair(), 0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, TokenizerPair, ::testing::Values("bert-uncased", "roberta-bpe", "xlmr-unigram"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace fathom::formats
