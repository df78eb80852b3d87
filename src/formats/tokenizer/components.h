#pragma once
// Internal building blocks of the tokenizer pipeline (normalizers, pre-tokenizers, regex helpers,
// byte-level alphabet), each built from its tokenizer.json object. Not a public API: include
// formats/tokenizer/tokenizer.h instead.
//
// Every component is immutable after construction and safe to use from many threads.
#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace re2 {
class RE2;
}

namespace fathom::formats::tok {

using Json = nlohmann::json;

// A load error naming the tokenizer file and the component at fault.
Error load_error(const std::string& file, const std::string& what);

// j[key] when it is a JSON boolean, else `fallback` (absent, null or another type).
inline bool get_bool(const Json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// ---- byte-level alphabet (GPT-2 bytes_to_unicode) ----
// UTF-8 text of the character that stands for byte b.
const std::array<std::string, 256>& byte_to_unicode();
// The byte a character stands for, or -1.
int unicode_to_byte(char32_t c);

// ---- regular expressions ----
// A Hugging Face pattern: a literal string or a regex written for Rust's regex crate. Regexes are
// run by RE2 after translating the Unicode-aware classes (\s, \d, \w) to their Rust meaning; a
// trailing `\s+(?!\S)|\s+` (GPT-2 family) is emulated, and the exact GPT-2 pattern is hand-written.
struct Segment {
  size_t begin, end;
  bool match;
};

class Pattern {
 public:
  static Result<std::shared_ptr<const Pattern>> from_json(const Json& j, const std::string& file);
  static Result<std::shared_ptr<const Pattern>> from_regex(const std::string& regex, const std::string& file);
  static std::shared_ptr<const Pattern> from_literal(std::string literal);
  ~Pattern();
  // Segments covering `s` in order (matches and the gaps between them); empty matches are skipped.
  std::vector<Segment> find(std::string_view s) const;
  // Replaces every match with `content`.
  std::string replace_all(std::string_view s, std::string_view content) const;

 private:
  Pattern() = default;
  enum class Kind { kLiteral, kGpt2, kRegex, kRegexWithSpaceTail } kind_ = Kind::kLiteral;
  std::string literal_;
  std::unique_ptr<re2::RE2> re_;
};

// The hand-written GPT-2 split `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
std::vector<Segment> gpt2_split(std::string_view s);

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
Result<SplitBehavior> parse_behavior(const Json& j, const std::string& file);
// Applies `behavior` to `segments` of `s`, appending the non-empty pieces to `out`.
void split_pieces(std::string_view s, std::vector<Segment> segments, SplitBehavior behavior,
                  std::vector<std::string>& out);

// ---- normalizers ----
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string s) const = 0;
};
Result<std::unique_ptr<Normalizer>> make_normalizer(const Json& j, const std::string& file);
// SentencePiece's "Precompiled" normalizer (precompiled_charsmap), defined in precompiled.cpp.
Result<std::unique_ptr<Normalizer>> make_precompiled_normalizer(const Json& j, const std::string& file);

// ---- pre-tokenizers ----
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece further. `first` says the pieces start at the beginning of the input text.
  virtual void apply(std::vector<std::string>& pieces, bool first) const = 0;
};
Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const Json& j, const std::string& file);

}  // namespace fathom::formats::tok

namespace fathom::formats::tok {

// ---- decoders ----
class Decoder {
 public:
  virtual ~Decoder() = default;
  // Transforms the token strings (Hugging Face's decode_chain); the caller concatenates the result.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};
Result<std::unique_ptr<Decoder>> make_decoder(const Json& j, const std::string& file);

// transformers' clean_up_tokenization_spaces (" ." -> ".", " n't" -> "n't", ...).
std::string clean_up_tokenization(std::string s);

}  // namespace fathom::formats::tok
