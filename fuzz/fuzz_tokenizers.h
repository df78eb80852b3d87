#pragma once
// Loading the tokenizers a fuzz target runs against. A tokenizer that does not load is a broken setup,
// not a finding: it is reported on stderr and the process aborts.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <vector>

#include "formats/tokenizer/tokenizer.h"
#include "fuzz_support.h"

namespace fathom::fuzz {

inline std::vector<std::shared_ptr<const formats::Tokenizer>> load_tokenizers(
    std::initializer_list<std::filesystem::path> paths) {
  std::vector<std::shared_ptr<const formats::Tokenizer>> v;
  for (const auto& path : paths) {
    auto t = formats::Tokenizer::load(path);
    if (!t.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), t.error().message.c_str());
      std::abort();
    }
    v.push_back(t.value());
  }
  return v;
}

// Every tokenizer kind the project ships, loaded once: BERT WordPiece, byte-level BPE (RoBERTa, XLM-R
// fixture), Whisper's multilingual BPE (80-mel vocabulary and large-v3's with <|yue|>), SentencePiece
// Unigram (XLM-R with its precompiled charsmap) and a byte_fallback Unigram.
inline const std::vector<std::shared_ptr<const formats::Tokenizer>>& project_tokenizers() {
  static const auto all = [] {
    const auto src = source_dir() / "tests/fixtures";
    return load_tokenizers({shared_dir() / "assets/bert-uncased-tokenizer/tokenizer.json",
                            src / "models/roberta-cls/tokenizer.json",
                            src / "models/whisper-tiny-random-f32/tokenizer.json",
                            src / "models/whisper-v3-random-f16/tokenizer.json",
                            src / "models/xlmr-bf16-max/tokenizer.json",
                            src / "models/xlmr-unigram-mean/tokenizer.json",
                            src / "tokenizers/spm-byte-fallback/tokenizer.json"});
  }();
  return all;
}

// The project tokenizer the input's next byte picks.
inline const formats::Tokenizer& pick_tokenizer(Reader& in) {
  const auto& all = project_tokenizers();
  return *all[in.byte() % all.size()];
}

}  // namespace fathom::fuzz
