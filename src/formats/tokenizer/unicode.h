#pragma once
// Unicode helpers for the tokenizer pipeline: UTF-8 decoding/encoding and the character classes that
// Hugging Face `tokenizers` (Rust) uses, computed from utf8proc's Unicode tables.
//
// All functions are pure and thread-safe. Strings are UTF-8; callers validate input once with
// `is_valid_utf8` and the other helpers assume valid UTF-8.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace fathom::formats::unicode {

// True when `s` is well-formed UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// Decodes the code point starting at s[i] (valid UTF-8 assumed) and returns its byte length in `len`.
char32_t decode_at(std::string_view s, size_t i, int* len);
// Appends the UTF-8 encoding of `c`.
void append_utf8(std::string& out, char32_t c);
std::string to_utf8(char32_t c);
// Code points of `s` and the byte offset where each starts (offsets has one extra entry: s.size()).
void decode_all(std::string_view s, std::vector<char32_t>& cps, std::vector<size_t>* offsets);
size_t char_count(std::string_view s);

// Rust char::is_whitespace (the Unicode White_Space property); equals the regex crate's \s.
bool is_whitespace(char32_t c);
bool is_letter(char32_t c);         // \p{L}
bool is_number(char32_t c);         // \p{N} (Rust char::is_numeric)
bool is_nonspacing_mark(char32_t c);  // Mn
bool is_mark(char32_t c);           // M*
bool is_punctuation(char32_t c);    // P* (Rust char::is_punctuation)
bool is_other(char32_t c);          // Cc, Cf, Cn, Co, Cs
bool is_alphanumeric(char32_t c);   // approximation of Rust char::is_alphanumeric: L, N, Mc
bool is_word_char(char32_t c);      // regex crate \w: L, M, Nd, Pc, ZWJ/ZWNJ
bool is_digit(char32_t c);          // Nd
// BERT's punctuation: ASCII punctuation or Unicode P*.
bool is_bert_punctuation(char32_t c);
// CJK ideograph ranges that BERT pads with spaces.
bool is_chinese_char(char32_t c);

// Rust char::to_lowercase applied per character (full mapping: U+0130 becomes "i\u0307").
std::string lowercase(std::string_view s);
enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };
std::string normalize(std::string_view s, NormalForm form);

}  // namespace fathom::formats::unicode
