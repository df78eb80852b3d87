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

}  // namespace fathom::fuzz
