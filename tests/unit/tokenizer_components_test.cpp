// Tokenizer building blocks: the GPT-2 split, regex emulation, split behaviours, normalizers, decoders.
#include <gtest/gtest.h>

#include <random>

#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

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
  auto n = make_normalizer(Json::parse(R"({"type":"Precompiled","precompiled_charsmap":"AA=="})"), "dir/tokenizer.json");
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("dir/tokenizer.json"), std::string::npos);
  EXPECT_NE(n.error().message.find("Precompiled"), std::string::npos);
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
