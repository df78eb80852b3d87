// Tokenizer building blocks: the GPT-2 split, regex emulation, split behaviours, normalizers, decoders.
#include <gtest/gtest.h>

#include <fstream>
#include <random>

#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"
#include "support/paths.h"

namespace fathom::formats::tok {
namespace {

std::vector<std::string> pieces(std::string_view s, const std::vector<Segment>& segs) {
  std::vector<std::string> out;
  for (const Segment& g : segs) out.emplace_back(s.substr(g.begin, g.end - g.begin));
  return out;
}

TEST(Gpt2Split, KnownPieces) {
  std::string s = "Hello  world's  I'LL 123abc!!  x\n\n";
  EXPECT_EQ(pieces(s, gpt2_split(s)),
            (std::vector<std::string>{"Hello", " ", " world", "'s", " ", " I", "'", "LL", " 123", "abc", "!!", " ",
                                      " x", "\n\n"}));
  std::string u = "naïve café 中文\u3000end";
  EXPECT_EQ(pieces(u, gpt2_split(u)),
            (std::vector<std::string>{"naïve", " café", " 中文", "\u3000", "end"}));
}

// The same pattern written differently goes through RE2 with the `\s+(?!\S)|\s+` emulation; both paths
// must agree on random text mixing letters, digits, marks, spaces and punctuation.
TEST(Gpt2Split, RegexEmulationAgreesWithHandWritten) {
  auto emulated = Pattern::from_regex(
      R"((?:'s)|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", "test");
  ASSERT_TRUE(emulated.ok()) << emulated.error().message;
  const std::vector<std::string> alphabet = {"a", "B", "é", "中", "1", "٣", " ", " ", "\t", "\n", "\u3000", "'",
                                             "s", "ll", "!", "\u0301", "😀", ",", "\u00a0"};
  std::mt19937 rng(7);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string s;
    int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    auto a = gpt2_split(s);
    auto b = (*emulated)->find(s);
    EXPECT_EQ(pieces(s, a), pieces(s, b)) << "text: '" << s << "'";
  }
}

// The Llama-3 / cl100k pattern also ends in `\s+(?!\S)|\s+` and runs through the emulation.
TEST(Pattern, Llama3Pattern) {
  auto p = Pattern::from_regex(
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
      "test");
  ASSERT_TRUE(p.ok()) << p.error().message;
  std::string s = "Hello world 12345!!\n\n  x I'LL";
  EXPECT_EQ(pieces(s, (*p)->find(s)),
            (std::vector<std::string>{"Hello", " world", " ", "123", "45", "!!\n\n", " ", " x", " I", "'LL"}));
}

TEST(Pattern, UnicodeWhitespaceClass) {
  auto p = Pattern::from_regex(R"(\s+)", "test");
  ASSERT_TRUE(p.ok());
  std::string s = "a\u3000\u00a0b";
  auto segs = (*p)->find(s);
  ASSERT_EQ(segs.size(), 3u);
  EXPECT_TRUE(segs[1].match);
  EXPECT_EQ(s.substr(segs[1].begin, segs[1].end - segs[1].begin), "\u3000\u00a0");
}

TEST(Pattern, LookaroundIsALoadError) {
  auto p = Pattern::from_regex(R"((?<=a)b)", "x/tokenizer.json");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("x/tokenizer.json"), std::string::npos);
}

TEST(SplitBehaviors, AllFive) {
  std::string s = "a-b--c";
  auto pat = Pattern::from_literal("-");
  auto run = [&](SplitBehavior b) {
    std::vector<std::string> out;
    split_pieces(s, pat->find(s), b, out);
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(run(SplitBehavior::kRemoved), (V{"a", "b", "c"}));
  EXPECT_EQ(run(SplitBehavior::kIsolated), (V{"a", "-", "b", "-", "-", "c"}));
  EXPECT_EQ(run(SplitBehavior::kMergedWithPrevious), (V{"a-", "b-", "-", "c"}));
  EXPECT_EQ(run(SplitBehavior::kMergedWithNext), (V{"a", "-b", "-", "-c"}));
  EXPECT_EQ(run(SplitBehavior::kContiguous), (V{"a", "-", "b", "--", "c"}));
}

std::string normalize_with(const std::string& json, const std::string& text) {
  auto n = make_normalizer(Json::parse(json), "test");
  EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
  return n.ok() ? (*n)->normalize(text) : "";
}

TEST(Normalizers, Basic) {
  EXPECT_EQ(normalize_with(R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,
                             "strip_accents":null,"lowercase":true})",
                           "Héllo\tWÖRLD\u200b中x"),
            "hello world 中 x");
  EXPECT_EQ(normalize_with(R"({"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":false,
                             "strip_accents":false,"lowercase":true})", "Héllo"),
            "héllo");
  EXPECT_EQ(normalize_with(R"({"type":"Sequence","normalizers":[{"type":"NFD"},{"type":"StripAccents"},
                             {"type":"Lowercase"}]})", "ÀÉÎ"),
            "aei");
  EXPECT_EQ(normalize_with(R"({"type":"NFKC"})", "ｆｕｌｌ①"), "full1");
  EXPECT_EQ(normalize_with(R"({"type":"Lowercase"})", "İΣ"), "i\u0307σ");
  EXPECT_EQ(normalize_with(R"({"type":"Strip","strip_left":true,"strip_right":false})", " \u3000x "), "x ");
  EXPECT_EQ(normalize_with(R"({"type":"Replace","pattern":{"String":" "},"content":"▁"})", "a b c"), "a▁b▁c");
  EXPECT_EQ(normalize_with(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b"), "a b");
  EXPECT_EQ(normalize_with(R"({"type":"Prepend","prepend":"▁"})", "ab"), "▁ab");
  EXPECT_EQ(normalize_with(R"({"type":"Prepend","prepend":"▁"})", ""), "");
}

TEST(Normalizers, UnsupportedTypeNamesFileAndType) {
  auto n = make_normalizer(Json::parse(R"({"type":"ByteLevel"})"), "dir/tokenizer.json");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("dir/tokenizer.json"), std::string::npos);
  EXPECT_NE(n.error().message.find("ByteLevel"), std::string::npos);
}

// The Precompiled normalizer of the XLM-R fixture (SentencePiece's nmt_nfkc charsmap).
Json fixture_precompiled() {
  std::ifstream in(testing::fixture("models/xlmr-unigram-mean/tokenizer.json"));
  Json j = Json::parse(in);
  EXPECT_EQ(j["normalizer"]["type"], "Precompiled");
  return j["normalizer"];
}

std::string base64(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  if (i + 1 == bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == bytes.size()) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63], '='};
  }
  return out;
}

TEST(Normalizers, PrecompiledCharsmap) {
  Json j = fixture_precompiled();
  auto n = make_normalizer(j, "test");
  ASSERT_TRUE(n.ok()) << n.error().message;
  const Normalizer& norm = **n;
  EXPECT_EQ(norm.normalize("plain ascii text"), "plain ascii text");
  EXPECT_EQ(norm.normalize("ｆｕｌｌ"), "full");                 // NFKC width folding
  EXPECT_EQ(norm.normalize("ﬁne"), "fine");                      // ligature
  EXPECT_EQ(norm.normalize("e\u0301"), "\u00e9");               // a whole grapheme cluster is one key
  EXPECT_EQ(norm.normalize("caf\u00e9"), "caf\u00e9");          // already normalized: copied
  EXPECT_EQ(norm.normalize(""), "");
  // Arbitrary valid UTF-8 normalizes to valid UTF-8.
  const std::vector<std::string> alphabet = {"a", "Z", "é", "e\u0301", "中", "ｶ", "ﾞ", "😀", "👍🏽", "\u200d", "\r\n",
                                             "\t", "\u3000", "①", "ﬁ", "\u0301", "\ufe0f", "🇫🇷", "\u00a0", "Ω"};
  std::mt19937 rng(5);
  for (int trial = 0; trial < 500; ++trial) {
    std::string s;
    for (int k = static_cast<int>(rng() % 10); k > 0; --k) s += alphabet[rng() % alphabet.size()];
    EXPECT_TRUE(unicode::is_valid_utf8(norm.normalize(s))) << s;
  }
}

TEST(Normalizers, PrecompiledMalformedCharsmaps) {
  auto load = [](const std::string& charsmap) {
    return make_normalizer(Json{{"type", "Precompiled"}, {"precompiled_charsmap", charsmap}}, "dir/tokenizer.json");
  };
  auto expect_error = [&](const std::string& charsmap, const std::string& what) {
    auto n = load(charsmap);
    ASSERT_FALSE(n.ok()) << what;
    EXPECT_NE(n.error().message.find("dir/tokenizer.json"), std::string::npos) << n.error().message;
    EXPECT_NE(n.error().message.find("Precompiled"), std::string::npos) << n.error().message;
    EXPECT_NE(n.error().message.find(what), std::string::npos) << n.error().message;
  };
  expect_error("AA==", "4-byte header");
  expect_error("not base64!", "base64");
  expect_error(base64(std::string("\x10\x00\x00\x00\x01\x02", 6)), "does not fit");
  expect_error(base64(std::string("\x03\x00\x00\x00\x01\x02\x03", 7)), "does not fit");
  expect_error(base64(std::string("\x00\x00\x00\x00\xff\xfe", 6)), "not valid UTF-8");
  auto missing = make_normalizer(Json{{"type", "Precompiled"}}, "dir/tokenizer.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("precompiled_charsmap"), std::string::npos);

  // A damaged trie (units pointing anywhere, values past the strings) must never read out of bounds.
  std::string blob;
  std::mt19937 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    const uint32_t units = 1 + rng() % 64;
    blob.assign(4, '\0');
    const uint32_t bytes = units * 4;
    for (int k = 0; k < 4; ++k) blob[k] = static_cast<char>((bytes >> (8 * k)) & 0xFF);
    for (uint32_t k = 0; k < bytes; ++k) blob.push_back(static_cast<char>(rng() & 0xFF));
    blob += std::string("x\0yz\0\xc3\xa9\0", 8);
    auto n = load(base64(blob));
    ASSERT_TRUE(n.ok()) << n.error().message;
    for (const char* text : {"abc", "xyz é", "\x01\x02\x03", "中文 😀", "e\u0301"})
      EXPECT_TRUE(unicode::is_valid_utf8((*n)->normalize(text)));
  }
}

std::vector<std::string> pre_tokenize_with(const std::string& json, const std::string& text) {
  auto p = make_pre_tokenizer(Json::parse(json), "test");
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.error().message);
  std::vector<std::string> v{text};
  if (p.ok()) (*p)->apply(v, true);
  return v;
}

TEST(PreTokenizers, Various) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pre_tokenize_with(R"({"type":"BertPreTokenizer"})", "Hi, you$ there\u3000x"),
            (V{"Hi", ",", "you", "$", "there", "x"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Whitespace"})", "Hi, you!! there"), (V{"Hi", ",", "you", "!!", "there"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"WhitespaceSplit"})", "Hi, you!!  there"), (V{"Hi,", "you!!", "there"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Digits","individual_digits":true})", "a123b"), (V{"a", "1", "2", "3", "b"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Digits","individual_digits":false})", "a123b"), (V{"a", "123", "b"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Punctuation","behavior":"Isolated"})", "a,b"), (V{"a", ",", "b"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":true})", "Hi there"),
            (V{"ĠHi", "Ġthere"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})",
                              "Hi there"),
            (V{"▁Hi", "▁there"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Split","pattern":{"String":"-"},"behavior":"Removed","invert":false})",
                              "a-b"),
            (V{"a", "b"}));
  EXPECT_EQ(pre_tokenize_with(R"({"type":"Split","pattern":{"Regex":"\\d+"},"behavior":"Removed","invert":true})",
                              "a12b3"),
            (V{"12", "3"}));
}

std::string decode_with(const std::string& json, std::vector<std::string> tokens) {
  auto d = make_decoder(Json::parse(json), "test");
  EXPECT_TRUE(d.ok()) << (d.ok() ? "" : d.error().message);
  if (!d.ok()) return "";
  (*d)->decode_chain(tokens);
  std::string s;
  for (auto& t : tokens) s += t;
  return s;
}

TEST(Decoders, Various) {
  EXPECT_EQ(decode_with(R"({"type":"WordPiece","prefix":"##","cleanup":true})", {"hello", "##s", ",", "world", "."}),
            "hellos, world.");
  EXPECT_EQ(decode_with(R"({"type":"ByteLevel"})", {"ĠHi", "Ġthere"}), " Hi there");
  // An incomplete UTF-8 sequence becomes one U+FFFD, as Rust's from_utf8_lossy.
  EXPECT_EQ(decode_with(R"({"type":"ByteLevel"})", {"ä", "¸", "a"}), "\uFFFDa");  // bytes e4 b8 'a'
  EXPECT_EQ(decode_with(R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"▁"},"content":" "},
                         {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})",
                        {"▁Hi", "<0xE4>", "<0xB8>", "<0xAD>", "▁x", "<0xFF>", "<0xFF>"}),
            "Hi中 x\uFFFD\uFFFD");
  EXPECT_EQ(decode_with(R"({"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true})",
                        {"▁Hi", "▁there"}),
            "Hi there");
}

TEST(Unicode, Utf8Validation) {
  EXPECT_TRUE(unicode::is_valid_utf8("héllo 中 😀"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xC3"));
  EXPECT_FALSE(unicode::is_valid_utf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(unicode::is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(unicode::is_valid_utf8("\xFF"));
}

}  // namespace
}  // namespace fathom::formats::tok
