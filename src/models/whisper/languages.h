#pragma once
// Whisper's language codes and English names (openai/whisper tokenizer.py LANGUAGES order).
#include <string>
#include <string_view>

namespace fathom::models::whisper {

// English name of a code ("en" -> "english"); empty when unknown.
std::string_view language_name(std::string_view code);
// Code of an English name ("english" -> "en", case-insensitive); empty when unknown.
std::string_view language_code_of_name(std::string_view name);

}  // namespace fathom::models::whisper
