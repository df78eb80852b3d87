#pragma once
// Added tokens of tokenizer.json ("added_tokens"): matched in the text before the model runs,
// leftmost-longest as Hugging Face's AddedVocabulary does, with lstrip/rstrip/single_word. Internal.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fathom::formats::tok {

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool normalized = false;
  bool lstrip = false, rstrip = false, single_word = false;
};

// A byte trie over a set of added tokens.
class AddedTokenMatcher {
 public:
  // `patterns[k]` is the text matched for `tokens[k]` (the normalized content for normalized tokens).
  void add(std::string pattern, const AddedToken* token);
  bool empty() const { return terminal_.empty(); }
  // Pieces of `s`: {text, nullptr} for plain text, {matched text, token} for added tokens.
  struct Piece {
    size_t begin, end;
    const AddedToken* token;
  };
  std::vector<Piece> split(std::string_view s) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;
    const AddedToken* token = nullptr;
  };
  int32_t child(int32_t node, unsigned char c) const;
  std::vector<Node> nodes_{Node{}};
  std::unordered_map<int32_t, const AddedToken*> terminal_;
  bool first_byte_[256] = {};
};

}  // namespace fathom::formats::tok
