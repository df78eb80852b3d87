#pragma once
// Tokenizer models (WordPiece, BPE, Unigram) built from the "model" object of tokenizer.json. Internal.
//
// Thread-safety: tokenize() may be called from many threads; the BPE word cache is guarded.
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "formats/tokenizer/components.h"

namespace fathom::formats::tok {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of one pre-tokenized word.
  virtual void tokenize(const std::string& word, std::vector<int32_t>& ids) const = 0;
  std::optional<int32_t> token_to_id(const std::string& token) const {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  const std::string* id_to_token(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < tokens_.size() && has_[id] ? &tokens_[id] : nullptr;
  }
  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }

 protected:
  // Fills vocab_/tokens_ from a {"token": id} object.
  Status load_vocab(const Json& vocab, const std::string& file);
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> tokens_;
  std::vector<bool> has_;
};

Result<std::unique_ptr<Model>> make_model(const Json& j, const std::string& file);
// The SentencePiece Unigram model ({"type": "Unigram", "unk_id", "vocab": [[piece, score], ...],
// "byte_fallback"}), defined in unigram.cpp.
Result<std::unique_ptr<Model>> make_unigram(const Json& j, const std::string& file);

}  // namespace fathom::formats::tok
