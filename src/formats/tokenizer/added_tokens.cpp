#include "formats/tokenizer/added_tokens.h"

#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

int32_t AddedTokenMatcher::child(int32_t node, unsigned char c) const {
  for (const auto& [k, v] : nodes_[node].next)
    if (k == c) return v;
  return -1;
}

void AddedTokenMatcher::add(std::string pattern, const AddedToken* token) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (unsigned char c : pattern) {
    int32_t next = child(node, c);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].next.emplace_back(c, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  if (!nodes_[node].token) nodes_[node].token = token;  // first one wins, as in the token list order
  terminal_[node] = nodes_[node].token;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

namespace {
bool last_is_word(std::string_view s) {
  if (s.empty()) return false;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) --i;
  int len;
  return u::is_word_char(u::decode_at(s, i, &len));
}
bool first_is_word(std::string_view s) {
  if (s.empty()) return false;
  int len;
  return u::is_word_char(u::decode_at(s, 0, &len));
}
}  // namespace

std::vector<AddedTokenMatcher::Piece> AddedTokenMatcher::split(std::string_view s) const {
  std::vector<Piece> out;
  if (empty()) {
    if (!s.empty()) out.push_back({0, s.size(), nullptr});
    return out;
  }
  size_t emitted = 0;  // end of the last emitted piece
  size_t i = 0;
  while (i < s.size()) {
    if (!first_byte_[static_cast<unsigned char>(s[i])]) { ++i; continue; }
    int32_t node = 0;
    size_t best_end = 0;
    const AddedToken* best = nullptr;
    for (size_t j = i; j < s.size(); ++j) {
      node = child(node, static_cast<unsigned char>(s[j]));
      if (node < 0) break;
      if (nodes_[node].token) {
        best = nodes_[node].token;
        best_end = j + 1;
      }
    }
    if (!best) { ++i; continue; }
    size_t start = i, stop = best_end;
    if (best->single_word && (last_is_word(s.substr(0, start)) || first_is_word(s.substr(stop)))) {
      i = best_end;  // a rejected match is not searched again inside
      continue;
    }
    if (best->lstrip) {
      while (start > emitted) {
        size_t p = start - 1;
        while (p > emitted && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
        int len;
        if (!u::is_whitespace(u::decode_at(s, p, &len))) break;
        start = p;
      }
    }
    if (best->rstrip) {
      while (stop < s.size()) {
        int len;
        if (!u::is_whitespace(u::decode_at(s, stop, &len))) break;
        stop += len;
      }
    }
    if (start > emitted) out.push_back({emitted, start, nullptr});
    out.push_back({start, stop, best});
    emitted = stop;
    i = stop;
  }
  if (emitted < s.size()) out.push_back({emitted, s.size(), nullptr});
  return out;
}

}  // namespace fathom::formats::tok
