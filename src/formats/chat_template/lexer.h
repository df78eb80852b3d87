#pragma once
// The chat template lexer: splits Jinja2 source into text and tag tokens with Jinja2's whitespace rules as
// transformers configures them (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False): `{%-`/`-%}`
// (and `{{-`, `{#-`, ...) strip whitespace, `{%+`/`+%}` opt out of lstrip/trim, comments are dropped, `{% raw %}`
// bodies become text, newlines are normalised to "\n" and one trailing newline is dropped.
//
// Errors: throws jinja::TemplateError "line L:C: ..." for unterminated tags, strings or comments and unknown
// characters (caught by ChatTemplate::parse). Thread-safety: pure functions.
#include <cstdint>
#include <string>
#include <vector>

namespace fathom::formats::jinja {

struct Token {
  enum class Type { kText, kVarBegin, kVarEnd, kBlockBegin, kBlockEnd, kName, kString, kInt, kFloat, kOp, kEof };
  Type type = Type::kEof;
  std::string text;  // text, name, operator, or the string literal's value
  int64_t int_value = 0;
  double float_value = 0;
  size_t offset = 0;  // in the normalised source
};

// Normalises newlines and drops one trailing newline (what Jinja2 lexes).
std::string normalize_source(std::string source);
// Tokenizes normalised source; the last token is kEof.
std::vector<Token> tokenize(const std::string& source);
// "line L:C" of a byte offset (column counts characters, 1-based).
std::string describe_position(const std::string& source, size_t offset);

}  // namespace fathom::formats::jinja
