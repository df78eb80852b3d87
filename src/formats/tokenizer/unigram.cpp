// SentencePiece Unigram model: the most likely segmentation of a word into vocabulary pieces (Viterbi
// over the piece log-probabilities), exactly as Hugging Face `tokenizers` computes it
// (Unigram::encode_optimized): every vocabulary entry is a candidate, a character that no one-character
// piece covers is an unknown piece scored min(score) - 10, consecutive unknowns fuse into one token, and
// with byte_fallback an unknown span becomes its <0xXX> byte pieces when all of them exist.
#include <algorithm>
#include <array>
#include <cstdio>
#include <deque>
#include <limits>
#include <numeric>
#include <string_view>

#include "formats/tokenizer/models.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace {

constexpr double kUnkPenalty = 10.0;  // tokenizers' K_UNK_PENALTY

// A byte trie over the pieces; the children of a node are stored contiguously, sorted by byte.
class PieceTrie {
 public:
  // `keys` are distinct, `values[k]` is the id of keys[k].
  void build(std::vector<std::string_view> keys, const std::vector<int32_t>& values) {
    std::vector<size_t> order(keys.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
    std::vector<std::string_view> sorted(keys.size());
    std::vector<int32_t> ids(keys.size());
    for (size_t k = 0; k < order.size(); ++k) {
      sorted[k] = keys[order[k]];
      ids[k] = values[order[k]];
    }
    add_node(0);
    struct Range {
      size_t lo, hi, depth;
      int32_t node;
    };
    std::deque<Range> queue{{0, sorted.size(), 0, 0}};
    while (!queue.empty()) {
      Range r = queue.front();
      queue.pop_front();
      size_t i = r.lo;
      if (i < r.hi && sorted[i].size() == r.depth) value_[r.node] = ids[i++];
      first_child_[r.node] = static_cast<int32_t>(label_.size());
      uint16_t count = 0;
      while (i < r.hi) {
        const auto c = static_cast<unsigned char>(sorted[i][r.depth]);
        size_t j = i;
        while (j < r.hi && static_cast<unsigned char>(sorted[j][r.depth]) == c) ++j;
        const int32_t child = add_node(c);
        queue.push_back({i, j, r.depth + 1, child});
        ++count;
        i = j;
      }
      n_children_[r.node] = count;
    }
  }

  // Calls f(length, id) for every piece that is a prefix of s[pos...], shortest first.
  template <class F>
  void common_prefixes(std::string_view s, size_t pos, F&& f) const {
    if (label_.empty()) return;
    int32_t node = 0;
    for (size_t i = pos; i < s.size(); ++i) {
      const auto c = static_cast<unsigned char>(s[i]);
      auto b = label_.begin() + first_child_[node], e = b + n_children_[node];
      auto it = std::lower_bound(b, e, c);
      if (it == e || *it != c) return;
      node = static_cast<int32_t>(it - label_.begin());
      if (value_[node] >= 0) f(i + 1 - pos, value_[node]);
    }
  }

 private:
  int32_t add_node(unsigned char label) {
    label_.push_back(label);
    first_child_.push_back(0);
    n_children_.push_back(0);
    value_.push_back(-1);
    return static_cast<int32_t>(label_.size() - 1);
  }
  std::vector<unsigned char> label_;
  std::vector<int32_t> first_child_;
  std::vector<uint16_t> n_children_;
  std::vector<int32_t> value_;
};

class Unigram final : public Model {
 public:
  static Result<std::unique_ptr<Model>> create(const Json& j, const std::string& file) {
    auto m = std::make_unique<Unigram>();
    const Json& vocab = j.contains("vocab") ? j["vocab"] : Json();
    if (!vocab.is_array()) return load_error(file, "Unigram model.vocab must be a list of [piece, score]");
    if (vocab.empty()) return load_error(file, "Unigram model.vocab is empty");
    if (vocab.size() > (size_t{1} << 30)) return load_error(file, "Unigram model.vocab is too large");
    const auto n = static_cast<int32_t>(vocab.size());
    m->tokens_.resize(vocab.size());
    m->has_.assign(vocab.size(), true);
    m->scores_.resize(vocab.size());
    double min_score = std::numeric_limits<double>::infinity();
    for (int32_t id = 0; id < n; ++id) {
      const Json& e = vocab[static_cast<size_t>(id)];
      if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !e[1].is_number())
        return load_error(file, "Unigram model.vocab entry " + std::to_string(id) +
                                    " is not [piece, score]: " + e.dump().substr(0, 100));
      m->tokens_[id] = e[0].get<std::string>();
      m->scores_[id] = e[1].get<double>();
      min_score = std::min(min_score, m->scores_[id]);
      m->vocab_[m->tokens_[id]] = id;  // a repeated piece maps to its last id, as in `tokenizers`
    }
    m->unk_score_ = min_score - kUnkPenalty;
    if (j.contains("unk_id") && !j["unk_id"].is_null()) {
      if (!j["unk_id"].is_number_integer() || j["unk_id"].get<int64_t>() < 0 ||
          j["unk_id"].get<int64_t>() >= n)
        return load_error(file, "Unigram unk_id " + j["unk_id"].dump() + " is outside the vocabulary (size " +
                                    std::to_string(n) + ")");
      m->unk_id_ = static_cast<int32_t>(j["unk_id"].get<int64_t>());
    }
    m->byte_fallback_ = get_bool(j, "byte_fallback", false);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      auto id = m->token_to_id(name);
      m->byte_ids_[static_cast<size_t>(b)] = id ? *id : -1;
    }
    std::vector<std::string_view> keys;
    std::vector<int32_t> ids;
    keys.reserve(m->vocab_.size());
    ids.reserve(m->vocab_.size());
    for (const auto& [piece, id] : m->vocab_) {
      if (piece.empty()) continue;
      keys.push_back(piece);
      ids.push_back(id);
    }
    m->trie_.build(std::move(keys), ids);
    return std::unique_ptr<Model>(std::move(m));
  }

  void tokenize(const std::string& word, std::vector<int32_t>& ids) const override {
    if (word.empty()) return;
    const size_t n = word.size();
    constexpr size_t kNone = std::numeric_limits<size_t>::max();
    struct Node {
      int32_t id = -1;  // -1: an unknown character and the model has no unk_id (dropped)
      double score = 0.0;
      size_t start = kNone;
    };
    std::vector<Node> best(n + 1);
    for (size_t pos = 0; pos < n;) {
      const double base = best[pos].score;
      int char_len;
      unicode::decode_at(word, pos, &char_len);
      bool has_single = false;
      trie_.common_prefixes(word, pos, [&](size_t len, int32_t id) {
        const double candidate = base + scores_[static_cast<size_t>(id)];
        Node& target = best[pos + len];
        if (target.start == kNone || candidate > target.score) target = {id, candidate, pos};
        if (len == static_cast<size_t>(char_len)) has_single = true;
      });
      if (!has_single) {
        const double candidate = base + unk_score_;
        Node& target = best[pos + static_cast<size_t>(char_len)];
        if (target.start == kNone || candidate > target.score)
          target = {unk_id_.value_or(-1), candidate, pos};
      }
      pos += static_cast<size_t>(char_len);
    }
    // Backtrack; runs of unknown pieces fuse into one span.
    struct Span {
      size_t begin, end;
      int32_t id;  // -2: a fused unknown span, resolved below
    };
    std::vector<Span> spans;
    size_t end = n, unk_end = kNone;
    auto flush_unk = [&](size_t begin) {
      if (unk_end != kNone) spans.push_back({begin, unk_end, -2});
      unk_end = kNone;
    };
    while (end > 0) {
      const Node& node = best[end];
      if (node.start == kNone || node.start >= end) break;  // unreachable for valid UTF-8 input
      if (unk_id_ && node.id == *unk_id_) {
        if (unk_end == kNone) unk_end = end;
      } else {
        flush_unk(end);
        if (node.id >= 0) spans.push_back({node.start, end, node.id});
      }
      end = node.start;
    }
    flush_unk(end);
    for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
      if (it->id >= 0) {
        ids.push_back(it->id);
        continue;
      }
      const std::string piece = word.substr(it->begin, it->end - it->begin);
      if (auto known = vocab_.find(piece); known != vocab_.end()) {
        ids.push_back(known->second);
        continue;
      }
      if (byte_fallback_ && std::all_of(piece.begin(), piece.end(), [&](char c) {
            return byte_ids_[static_cast<unsigned char>(c)] >= 0;
          })) {
        for (char c : piece) ids.push_back(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
      ids.push_back(*unk_id_);
    }
  }

 private:
  std::vector<double> scores_;
  PieceTrie trie_;
  std::optional<int32_t> unk_id_;
  bool byte_fallback_ = false;
  double unk_score_ = 0.0;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace

Result<std::unique_ptr<Model>> make_unigram(const Json& j, const std::string& file) {
  return Unigram::create(j, file);
}

}  // namespace fathom::formats::tok
