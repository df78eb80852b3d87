// Tokenizer behaviour beyond the parity fixtures: robustness on arbitrary bytes, load errors, BPE and
// added-token options on tiny hand-written tokenizer.json files, Whisper timestamps, thread-safety.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "formats/tokenizer/tokenizer.h"
#include "support/paths.h"

namespace fathom::formats {
namespace {

using Json = nlohmann::json;

std::filesystem::path fixture_tokenizer(const std::string& which) {
  if (which == "bert") return testing::shared_dir() / "assets/bert-uncased-tokenizer/tokenizer.json";
  if (which == "roberta") return testing::fixture("models/roberta-cls/tokenizer.json");
  return testing::fixture("models/whisper-tiny-random-f32/tokenizer.json");
}

std::shared_ptr<const Tokenizer> load_fixture(const std::string& which) {
  auto t = Tokenizer::load(fixture_tokenizer(which));
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? t.value() : nullptr;
}

// Writes `j` as <tmp>/<name>/tokenizer.json and returns the path.
std::filesystem::path write_tokenizer(const std::string& name, const Json& j) {
  auto dir = std::filesystem::temp_directory_path() / ("fathom_tok_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / "tokenizer.json";
  std::ofstream(path) << j.dump();
  return path;
}

std::shared_ptr<const Tokenizer> load_json(const std::string& name, const Json& j) {
  auto t = Tokenizer::load(write_tokenizer(name, j));
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? t.value() : nullptr;
}

std::vector<int32_t> encode(const Tokenizer& t, const std::string& text, bool special = false) {
  EncodeOptions o;
  o.add_special_tokens = special;
  auto r = t.encode(text, o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : std::vector<int32_t>{};
}

TEST(TokenizerRobustness, ArbitraryBytesNeverCrash) {
  const std::vector<std::string> pieces = {"a", " ", "é", "中", "😀", "'s", "\n", "<|en|>", "<|0.00|>", "[CLS]",
                                           "<s>", "\xC3", "\xE4\xB8", "\xF0\x9F\x98", "\xFF", "\x80", "\xED\xA0\x80",
                                           "\xC0\xAF", std::string(1, '\0'), "\u0301", "  ", "##", "Ġ"};
  std::mt19937 rng(1234);
  for (const char* which : {"bert", "roberta", "whisper"}) {
    auto tok = load_fixture(which);
    ASSERT_TRUE(tok);
    int valid = 0, invalid = 0;
    for (int trial = 0; trial < 1500; ++trial) {
      std::string s;
      if (trial % 3 == 0) {
        int n = static_cast<int>(rng() % 64);
        for (int k = 0; k < n; ++k) s.push_back(static_cast<char>(rng() & 0xFF));
      } else {
        int n = static_cast<int>(rng() % 16);
        for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
      }
      auto ids = tok->encode(s);
      if (ids.ok()) {
        ++valid;
        for (int32_t id : *ids) {
          ASSERT_GE(id, 0);
          ASSERT_LT(id, tok->vocab_size());
        }
        auto text = tok->decode(*ids, trial % 2 == 0);
        ASSERT_TRUE(text.ok()) << text.error().message;
      } else {
        ++invalid;
        EXPECT_EQ(ids.error().code, ErrorCode::kInvalidArgument);
      }
    }
    EXPECT_GT(valid, 100) << which;
    EXPECT_GT(invalid, 100) << which;
  }
}

TEST(TokenizerRobustness, RandomIdsDecodeToValidUtf8) {
  auto tok = load_fixture("whisper");
  ASSERT_TRUE(tok);
  std::mt19937 rng(99);
  bool saw_replacement = false;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<int32_t> ids;
    for (int k = 0; k < 8; ++k) ids.push_back(static_cast<int32_t>(rng() % 50257));
    auto text = tok->decode(ids);
    ASSERT_TRUE(text.ok());
    // Re-encoding the decoded text must succeed: it is valid UTF-8.
    ASSERT_TRUE(tok->encode(*text).ok()) << "decoded text is not valid UTF-8";
    saw_replacement |= text->find("\uFFFD") != std::string::npos;
  }
  EXPECT_TRUE(saw_replacement);
  // A lone continuation byte token decodes to U+FFFD.
  auto lone = tok->token_to_id("\xC2\xA1");  // "¡", the byte-level character for byte 0xA1
  ASSERT_TRUE(lone.has_value());
  EXPECT_EQ(tok->decode({*lone}).value(), "\uFFFD");
}

TEST(TokenizerLoad, Errors) {
  auto missing = Tokenizer::load("/nonexistent/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);

  auto dir = write_tokenizer("broken", Json::object()).parent_path();
  std::ofstream(dir / "tokenizer.json") << "{ not json";
  auto broken = Tokenizer::load(dir / "tokenizer.json");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("tokenizer.json"), std::string::npos);

  Json unigram = {{"model", {{"type", "Unigram"}, {"vocab", Json::array()}}}};
  auto path = write_tokenizer("unigram", unigram);
  auto u = Tokenizer::load(path);
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(u.error().message.find(path.string()), std::string::npos) << u.error().message;
  EXPECT_NE(u.error().message.find("Unigram"), std::string::npos) << u.error().message;

  Json pre = {{"model", {{"type", "WordPiece"}, {"vocab", {{"[UNK]", 0}}}, {"unk_token", "[UNK]"}}},
              {"pre_tokenizer", {{"type", "CharDelimiterSplit"}, {"delimiter", "x"}}}};
  auto p = Tokenizer::load(write_tokenizer("chardelim", pre));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("CharDelimiterSplit"), std::string::npos) << p.error().message;

  Json lookbehind = pre;
  lookbehind["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(?<=a)b"}}}, {"behavior", "Isolated"},
                                 {"invert", false}};
  EXPECT_FALSE(Tokenizer::load(write_tokenizer("lookbehind", lookbehind)).ok());

  Json bad_merge = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}}}, {"merges", {"a b"}}}}};
  EXPECT_FALSE(Tokenizer::load(write_tokenizer("badmerge", bad_merge)).ok());
}

TEST(TokenizerLoad, UnigramErrorsNameFileAndProblem) {
  auto expect_error = [](const std::string& name, const Json& model, const std::string& what) {
    auto path = write_tokenizer(name, Json{{"model", model}});
    auto t = Tokenizer::load(path);
    ASSERT_FALSE(t.ok()) << name;
    EXPECT_EQ(t.error().code, ErrorCode::kLoadFailed);
    EXPECT_NE(t.error().message.find(path.string()), std::string::npos) << t.error().message;
    EXPECT_NE(t.error().message.find(what), std::string::npos) << t.error().message;
  };
  expect_error("uni_obj", {{"type", "Unigram"}, {"vocab", {{"a", 0}}}}, "list of [piece, score]");
  expect_error("uni_entry", {{"type", "Unigram"}, {"vocab", Json::array({Json::array({"a"})})}}, "entry 0");
  expect_error("uni_score", {{"type", "Unigram"}, {"vocab", Json::array({Json::array({"a", -1.0}), Json::array({"b", "x"})})}},
               "entry 1");
  expect_error("uni_unk", {{"type", "Unigram"}, {"unk_id", 2}, {"vocab", Json::array({Json::array({"a", -1.0})})}},
               "unk_id 2 is outside the vocabulary (size 1)");
  expect_error("uni_unk_neg", {{"type", "Unigram"}, {"unk_id", -1}, {"vocab", Json::array({Json::array({"a", -1.0})})}},
               "unk_id -1");
  Json bad_normalizer = {{"model", {{"type", "Unigram"}, {"unk_id", 0}, {"vocab", Json::array({Json::array({"<unk>", 0.0})})}}},
                         {"normalizer", {{"type", "Precompiled"}, {"precompiled_charsmap", "%%%"}}}};
  auto path = write_tokenizer("uni_precompiled", bad_normalizer);
  auto t = Tokenizer::load(path);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.error().message.find(path.string()), std::string::npos) << t.error().message;
  EXPECT_NE(t.error().message.find("Precompiled normalizer: precompiled_charsmap is not valid base64"),
            std::string::npos) << t.error().message;
}

// A hand-written Unigram: the scores make the best segmentation checkable by hand.
Json tiny_unigram(Json unk_id, bool byte_fallback) {
  Json vocab = Json::array({Json::array({"<unk>", 0.0}), Json::array({"a", -1.0}), Json::array({"b", -2.0}),
                            Json::array({"ab", -1.5}), Json::array({"c", -1.0}), Json::array({"abc", -10.0}),
                            Json::array({"<0x78>", 0.0}), Json::array({"é", -3.0}), Json::array({"ab", -4.0})});
  return {{"model", {{"type", "Unigram"}, {"unk_id", unk_id}, {"vocab", vocab}, {"byte_fallback", byte_fallback}}},
          {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
}

TEST(TokenizerUnigram, ViterbiUnknownsAndByteFallback) {
  auto t = load_json("unigram_plain", tiny_unigram(0, false));
  ASSERT_TRUE(t);
  // "ab" appears twice: the last id (8) wins, with its score -4 (a + b = -3 is better).
  EXPECT_EQ(encode(*t, "ab"), (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(encode(*t, "abc"), (std::vector<int32_t>{1, 2, 4}));   // abc scores -10, a + b + c -4
  EXPECT_EQ(encode(*t, "é"), (std::vector<int32_t>{7}));
  // Unknown characters (score min - 10 = -20 each) fuse into one <unk>; "<0x78>" is matched literally.
  EXPECT_EQ(encode(*t, "xyza"), (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(encode(*t, "axbyc"), (std::vector<int32_t>{1, 0, 2, 0, 4}));
  EXPECT_EQ(encode(*t, "<0x78>"), (std::vector<int32_t>{6}));
  EXPECT_EQ(encode(*t, "中😀"), (std::vector<int32_t>{0}));
  EXPECT_EQ(encode(*t, ""), (std::vector<int32_t>{}));
  EXPECT_EQ(t->decode({1, 8, 4}).value(), "aabc");

  // byte_fallback: an unknown span becomes its bytes when all exist, else <unk>.
  auto bf = load_json("unigram_bytes", tiny_unigram(0, true));
  ASSERT_TRUE(bf);
  EXPECT_EQ(encode(*bf, "xa"), (std::vector<int32_t>{6, 1}));
  EXPECT_EQ(encode(*bf, "xxa"), (std::vector<int32_t>{6, 6, 1}));
  EXPECT_EQ(encode(*bf, "xya"), (std::vector<int32_t>{0, 1}));  // no <0x79>: the fused "xy" is <unk>
  EXPECT_EQ(bf->decode({6, 6, 1}).value(), "xxa");

  // Without an unk_id unknown characters are dropped.
  auto no_unk = load_json("unigram_no_unk", tiny_unigram(nullptr, false));
  ASSERT_TRUE(no_unk);
  EXPECT_EQ(encode(*no_unk, "xaybz"), (std::vector<int32_t>{1, 2}));
}

TEST(TokenizerUnigram, FixtureRobustAndLongInput) {
  for (const char* rel : {"models/xlmr-unigram-mean/tokenizer.json", "tokenizers/spm-byte-fallback/tokenizer.json"}) {
    auto loaded = Tokenizer::load(testing::fixture(rel));
    ASSERT_TRUE(loaded.ok()) << loaded.error().message;
    const Tokenizer& tok = **loaded;
    std::mt19937 rng(42);
    const std::vector<std::string> pieces = {"a", " ", "é", "e\u0301", "中", "😀", "👍🏽", "\u200d", "ｆ", "ﬁ", "<s>",
                                             "<mask>", "▁", "\n", "  ", "Ω", "\u0301", "\xF0\x9F", "\xFF"};
    for (int trial = 0; trial < 400; ++trial) {
      std::string s;
      for (int k = static_cast<int>(rng() % 20); k > 0; --k) s += pieces[rng() % pieces.size()];
      auto ids = tok.encode(s);
      if (!ids.ok()) {
        EXPECT_EQ(ids.error().code, ErrorCode::kInvalidArgument);
        continue;
      }
      for (int32_t id : *ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
      ASSERT_TRUE(tok.decode(*ids).ok());
    }
    // One long word (no whitespace) goes through a single Viterbi pass.
    std::string word;
    for (int k = 0; k < 30000; ++k) word += k % 3 == 0 ? "ab" : k % 3 == 1 ? "é" : "中";
    for (const std::string& text : {word, std::string(200000, 'x')}) {
      auto ids = tok.encode(text);
      ASSERT_TRUE(ids.ok());
      EXPECT_GT(ids->size(), 2u);
      ASSERT_TRUE(tok.decode(*ids).ok());
    }
  }
}

Json tiny_bpe(bool fuse_unk, bool byte_fallback) {
  Json vocab = {{"a", 0}, {"b", 1}, {"ab", 2}, {"<unk>", 3}, {"c", 4}, {"abc", 5}, {"<0x78>", 6}, {"<0xC3>", 7}};
  return {{"model",
           {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "ab c"}}, {"unk_token", "<unk>"},
            {"fuse_unk", fuse_unk}, {"byte_fallback", byte_fallback}}},
          {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}, {{"type", "Fuse"}}}}}}};
}

TEST(TokenizerBpe, UnknownsAndByteFallback) {
  auto plain = load_json("bpe_plain", tiny_bpe(false, false));
  auto fused = load_json("bpe_fused", tiny_bpe(true, false));
  auto bytes = load_json("bpe_bytes", tiny_bpe(false, true));
  ASSERT_TRUE(plain && fused && bytes);
  EXPECT_EQ(encode(*plain, "abc"), (std::vector<int32_t>{5}));
  EXPECT_EQ(encode(*plain, "ab yzc"), (std::vector<int32_t>{2, 3, 3, 3, 4}));
  EXPECT_EQ(encode(*fused, "ab yzc"), (std::vector<int32_t>{2, 3, 4}));
  // 'x' falls back to its byte token; 'é' (c3 a9) lacks <0xA9> and becomes <unk>.
  EXPECT_EQ(encode(*bytes, "axé"), (std::vector<int32_t>{0, 6, 3}));
  EXPECT_EQ(bytes->decode({0, 6, 4}).value(), "axc");
  EXPECT_EQ(bytes->decode({0, 7, 4}).value(), "a\uFFFDc");
}

TEST(TokenizerBpe, SubwordPrefixAndSuffix) {
  Json j = {{"model",
             {{"type", "BPE"},
              {"vocab", {{"a", 0}, {"##b</w>", 1}, {"ab</w>", 2}, {"a</w>", 3}, {"##b", 4}, {"##c</w>", 5}}},
              {"merges", Json::array({Json::array({"a", "##b</w>"})})},
              {"continuing_subword_prefix", "##"},
              {"end_of_word_suffix", "</w>"}}},
            {"pre_tokenizer", {{"type", "WhitespaceSplit"}}}};
  auto t = load_json("bpe_affixes", j);
  ASSERT_TRUE(t);
  EXPECT_EQ(encode(*t, "ab a abc"), (std::vector<int32_t>{2, 3, 0, 4, 5}));
}

Json tiny_wordpiece() {
  Json vocab = {{"[UNK]", 0}, {"hello", 1}, {"world", 2}, {"[CLS]", 3}, {"[SEP]", 4},
                {"con", 9},   {"##cat", 10}, {"cat", 12}};
  Json added = Json::array();
  auto tok = [](int id, const char* content, bool special, bool normalized, bool lstrip, bool rstrip, bool single) {
    return Json{{"id", id},         {"content", content}, {"special", special}, {"normalized", normalized},
                {"lstrip", lstrip}, {"rstrip", rstrip},   {"single_word", single}};
  };
  added.push_back(tok(3, "[CLS]", true, false, false, false, false));
  added.push_back(tok(4, "[SEP]", true, false, false, false, false));
  added.push_back(tok(5, "<mask>", true, false, true, false, false));
  added.push_back(tok(7, "MyTok", false, true, false, false, false));
  added.push_back(tok(8, "cat", false, false, false, false, true));
  added.push_back(tok(11, "<r>", false, false, false, true, false));
  return {{"added_tokens", added},
          {"normalizer", {{"type", "Lowercase"}}},
          {"model", {{"type", "WordPiece"}, {"vocab", vocab}, {"unk_token", "[UNK]"},
                     {"continuing_subword_prefix", "##"}, {"max_input_chars_per_word", 100}}},
          {"post_processor",
           {{"type", "Sequence"},
            {"processors",
             {{{"type", "ByteLevel"}, {"trim_offsets", true}},
              {{"type", "TemplateProcessing"},
               {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                           {{"SpecialToken", {{"id", "[SEP]"}, {"type_id", 0}}}}}},
               {"special_tokens", {{"[CLS]", {{"id", "[CLS]"}, {"ids", {3}}, {"tokens", {"[CLS]"}}}},
                                   {"[SEP]", {{"id", "[SEP]"}, {"ids", {4}}, {"tokens", {"[SEP]"}}}}}}}}}}},
          {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}}};
}

TEST(TokenizerAddedTokens, StripSingleWordAndNormalized) {
  auto t = load_json("wordpiece_added", tiny_wordpiece());
  ASSERT_TRUE(t);
  // No pre-tokenizer: spaces stay inside words, so only lstrip/rstrip make these words known.
  EXPECT_EQ(encode(*t, "hello  <mask>world"), (std::vector<int32_t>{1, 5, 2}));
  EXPECT_EQ(encode(*t, "hello<r>  world"), (std::vector<int32_t>{1, 11, 2}));
  EXPECT_EQ(encode(*t, "hello<mask>  world"), (std::vector<int32_t>{1, 5, 0}));
  // Normalized added tokens match the normalized text; raw ones are case-sensitive.
  EXPECT_EQ(encode(*t, "MYTOK"), (std::vector<int32_t>{7}));
  EXPECT_EQ(encode(*t, "[cls]"), (std::vector<int32_t>{0}));
  // single_word: "cat" alone is the added token, inside "concat" it is not.
  EXPECT_EQ(encode(*t, "cat"), (std::vector<int32_t>{8}));
  EXPECT_EQ(encode(*t, "concat"), (std::vector<int32_t>{9, 10}));
  EXPECT_EQ(encode(*t, "hello", true), (std::vector<int32_t>{3, 1, 4}));
  EXPECT_EQ(t->num_special_tokens_to_add(), 2);
  EXPECT_EQ(t->decode({3, 1, 5, 2, 4}, true).value(), "hello world");
  EXPECT_EQ(t->decode({3, 1, 5, 2, 4}, false).value(), "[CLS] hello <mask> world [SEP]");
}

TEST(TokenizerTruncation, RoomForSpecials) {
  auto t = load_json("wordpiece_trunc", tiny_wordpiece());
  ASSERT_TRUE(t);
  EncodeOptions o;
  o.max_length = 2;
  EXPECT_EQ(t->encode("hello<r>world", o).value(), (std::vector<int32_t>{3, 4}));
  o.max_length = 1;
  auto too_small = t->encode("hello", o);
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.error().code, ErrorCode::kInvalidArgument);
  o.add_special_tokens = false;
  EXPECT_EQ(t->encode("hello<r>world", o).value(), (std::vector<int32_t>{1}));
}

TEST(TokenizerWhisper, TimestampAndLanguageTokens) {
  auto t = load_fixture("whisper");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->vocab_size(), 51865);
  EXPECT_EQ(t->token_to_id("<|0.00|>"), 50364);
  EXPECT_EQ(t->token_to_id("<|30.00|>"), 51864);
  EXPECT_EQ(t->token_to_id("<|en|>"), 50259);
  EXPECT_FALSE(t->is_special(50364));
  EXPECT_TRUE(t->is_special(50259));
  auto hello = t->token_to_id("\xC4\xA0Hello");  // "ĠHello"
  ASSERT_TRUE(hello.has_value());
  auto ids = encode(*t, "<|en|><|0.00|> Hello<|1.00|>");
  EXPECT_EQ(ids, (std::vector<int32_t>{50259, 50364, *hello, 50414}));
  // As transformers' WhisperTokenizer.decode: timestamps (added, not special) are removed from the text
  // unless decode_with_timestamps is set; skip_special_tokens drops <|en|>.
  EXPECT_EQ(t->decode(ids, true).value(), " Hello");
  EXPECT_EQ(t->decode(ids, false).value(), "<|en|> Hello");
  DecodeOptions keep;
  keep.decode_with_timestamps = true;
  EXPECT_EQ(t->decode(ids, keep).value(), "<|en|><|0.00|> Hello<|1.00|>");
  keep.skip_special_tokens = true;
  EXPECT_EQ(t->decode(ids, keep).value(), "<|0.00|> Hello<|1.00|>");
  // A <|startofprev|> prompt is dropped up to <|startoftranscript|> when skipping special tokens.
  auto prev = t->token_to_id("<|startofprev|>"), sot = t->token_to_id("<|startoftranscript|>");
  ASSERT_TRUE(prev && sot);
  auto world = t->token_to_id("\xC4\xA0world");
  ASSERT_TRUE(world.has_value());
  EXPECT_EQ(t->decode({*prev, *world, *sot, *hello}, true).value(), " Hello");
  EXPECT_EQ(t->decode({*prev, *world, *sot, *hello}, false).value(), "<|startofprev|> world<|startoftranscript|> Hello");
}

TEST(TokenizerThreads, ConcurrentEncodeMatchesSerial) {
  auto t = load_fixture("roberta");
  ASSERT_TRUE(t);
  std::vector<std::string> texts;
  for (int k = 0; k < 64; ++k)
    texts.push_back("Sentence number " + std::to_string(k) + " with words like tokenization, caching and " +
                    std::string(static_cast<size_t>(k % 7), 'z') + " café!");
  std::vector<std::vector<int32_t>> serial;
  for (const auto& s : texts) serial.push_back(encode(*t, s, true));
  // A fresh instance so the BPE cache is filled concurrently.
  auto fresh = load_fixture("roberta");
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t k = 0; k < texts.size(); ++k) {
          size_t idx = (k + static_cast<size_t>(th) * 7) % texts.size();
          if (fresh->encode(texts[idx]).value() != serial[idx]) ++mismatches;
        }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace fathom::formats
