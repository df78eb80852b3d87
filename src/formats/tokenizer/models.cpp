// WordPiece and BPE models (Unigram lives in unigram.cpp).
#include "formats/tokenizer/models.h"

#include <cstdio>
#include <mutex>
#include <queue>

#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

Status Model::load_vocab(const Json& vocab, const std::string& file) {
  if (!vocab.is_object()) return load_error(file, "model.vocab must be an object of token -> id");
  int32_t max_id = -1;
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 || it.value().get<int64_t>() > (1 << 30))
      return load_error(file, "model.vocab entry '" + it.key() + "' has an invalid id");
    auto id = static_cast<int32_t>(it.value().get<int64_t>());
    vocab_[it.key()] = id;
    max_id = std::max(max_id, id);
  }
  tokens_.assign(static_cast<size_t>(max_id + 1), std::string());
  has_.assign(static_cast<size_t>(max_id + 1), false);
  for (const auto& [tok, id] : vocab_) {
    tokens_[id] = tok;
    has_[id] = true;
  }
  return Status::Ok();
}

namespace {

std::string get_string(const Json& j, const char* key, std::string fallback) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : fallback;
}

class WordPiece final : public Model {
 public:
  static Result<std::unique_ptr<Model>> create(const Json& j, const std::string& file) {
    auto m = std::make_unique<WordPiece>();
    FATHOM_TRY(m->load_vocab(j.value("vocab", Json()), file));
    m->prefix_ = get_string(j, "continuing_subword_prefix", "##");
    m->max_chars_ = j.value("max_input_chars_per_word", 100);
    std::string unk = get_string(j, "unk_token", "[UNK]");
    auto id = m->token_to_id(unk);
    if (!id) return load_error(file, "WordPiece unk_token '" + unk + "' is not in the vocabulary");
    m->unk_id_ = *id;
    for (const auto& [token, token_id] : m->vocab_) m->max_token_bytes_ = std::max(m->max_token_bytes_, token.size());
    return std::unique_ptr<Model>(std::move(m));
  }

  void tokenize(const std::string& word, std::vector<int32_t>& ids) const override {
    if (u::char_count(word) > max_chars_) {
      ids.push_back(unk_id_);
      return;
    }
    const size_t first = ids.size();
    std::string candidate;
    size_t start = 0;
    while (start < word.size()) {
      // No vocabulary entry is longer than max_token_bytes_: start there (on a character boundary).
      const size_t budget = max_token_bytes_ - (start > 0 ? std::min(max_token_bytes_, prefix_.size()) : 0);
      size_t end = word.size();
      if (end - start > budget) {
        end = start + budget;
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      }
      bool found = false;
      while (end > start) {
        candidate.clear();
        if (start > 0) candidate = prefix_;
        candidate.append(word, start, end - start);
        auto it = vocab_.find(candidate);
        if (it != vocab_.end()) {
          ids.push_back(it->second);
          found = true;
          break;
        }
        // step back one UTF-8 character
        do --end;
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80);
      }
      if (!found) {
        ids.resize(first);
        ids.push_back(unk_id_);
        return;
      }
      start = end;
    }
  }

 private:
  std::string prefix_;
  size_t max_chars_ = 100;
  size_t max_token_bytes_ = 0;
  int32_t unk_id_ = 0;
};

class Bpe final : public Model {
 public:
  static Result<std::unique_ptr<Model>> create(const Json& j, const std::string& file) {
    auto m = std::make_unique<Bpe>();
    FATHOM_TRY(m->load_vocab(j.value("vocab", Json()), file));
    if (j.contains("dropout") && j["dropout"].is_number() && j["dropout"].get<double>() > 0.0)
      return load_error(file, "BPE dropout is not supported");
    m->prefix_ = get_string(j, "continuing_subword_prefix", "");
    m->suffix_ = get_string(j, "end_of_word_suffix", "");
    m->fuse_unk_ = j.value("fuse_unk", false) == true;
    m->byte_fallback_ = j.contains("byte_fallback") && j["byte_fallback"].is_boolean() && j["byte_fallback"].get<bool>();
    m->ignore_merges_ = j.contains("ignore_merges") && j["ignore_merges"].is_boolean() && j["ignore_merges"].get<bool>();
    if (j.contains("unk_token") && j["unk_token"].is_string()) {
      auto id = m->token_to_id(j["unk_token"].get<std::string>());
      if (!id) return load_error(file, "BPE unk_token '" + j["unk_token"].get<std::string>() + "' is not in the vocabulary");
      m->unk_id_ = *id;
    }
    const Json& merges = j.value("merges", Json::array());
    if (!merges.is_array()) return load_error(file, "model.merges must be a list");
    m->merges_.reserve(merges.size());
    int32_t rank = 0;
    for (const Json& mj : merges) {
      std::string a, b;
      if (mj.is_string()) {
        const std::string s = mj.get<std::string>();
        size_t sp = s.find(' ', 1);
        if (sp == std::string::npos) return load_error(file, "BPE merge '" + s + "' is not 'a b'");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (mj.is_array() && mj.size() == 2 && mj[0].is_string() && mj[1].is_string()) {
        a = mj[0].get<std::string>();
        b = mj[1].get<std::string>();
      } else {
        return load_error(file, "BPE merge must be 'a b' or [a, b]: " + mj.dump());
      }
      auto ia = m->token_to_id(a), ib = m->token_to_id(b);
      std::string merged = a + (m->prefix_.empty() || b.rfind(m->prefix_, 0) != 0 ? b : b.substr(m->prefix_.size()));
      auto im = m->token_to_id(merged);
      if (!ia || !ib || !im) return load_error(file, "BPE merge '" + a + " " + b + "' uses tokens missing from the vocabulary");
      m->merges_.emplace(key(*ia, *ib), std::make_pair(rank++, *im));
    }
    return std::unique_ptr<Model>(std::move(m));
  }

  void tokenize(const std::string& word, std::vector<int32_t>& ids) const override {
    if (word.empty()) return;
    {
      std::shared_lock lock(cache_mutex_);
      auto it = cache_.find(word);
      if (it != cache_.end()) {
        ids.insert(ids.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> out;
    merge_word(word, out);
    ids.insert(ids.end(), out.begin(), out.end());
    if (word.size() <= kMaxCachedWordBytes) {
      std::unique_lock lock(cache_mutex_);
      if (cache_.size() < kCacheCapacity) cache_.emplace(word, std::move(out));
    }
  }

 private:
  static constexpr size_t kCacheCapacity = 10000;
  static constexpr size_t kMaxCachedWordBytes = 256;
  static uint64_t key(int32_t a, int32_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  struct Symbol {
    int32_t id;
    int32_t prev, next;
    size_t len;  // bytes of the word covered; 0 once merged away
  };

  void merge_word(const std::string& word, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
      auto it = vocab_.find(word);
      if (it != vocab_.end()) {
        out.push_back(it->second);
        return;
      }
    }
    std::vector<Symbol> syms;
    std::string piece;
    bool last_unk = false;
    for (size_t i = 0; i < word.size();) {
      int len;
      u::decode_at(word, i, &len);
      bool is_first = i == 0, is_last = i + len >= word.size();
      piece.clear();
      if (!is_first) piece = prefix_;
      piece.append(word, i, len);
      if (is_last) piece += suffix_;
      auto it = vocab_.find(piece);
      if (it != vocab_.end()) {
        syms.push_back({it->second, 0, 0, static_cast<size_t>(len)});
        last_unk = false;
      } else if (byte_fallback_) {
        bool all = true;
        std::vector<int32_t> bytes;
        for (int k = 0; k < len; ++k) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "<0x%02X>", static_cast<unsigned char>(word[i + k]));
          auto b = vocab_.find(buf);
          if (b == vocab_.end()) { all = false; break; }
          bytes.push_back(b->second);
        }
        if (all) {
          for (int32_t b : bytes) syms.push_back({b, 0, 0, 1});
          last_unk = false;
        } else {
          push_unk(syms, static_cast<size_t>(len), last_unk);
        }
      } else {
        push_unk(syms, static_cast<size_t>(len), last_unk);
      }
      i += len;
    }
    const auto n = static_cast<int32_t>(syms.size());
    for (int32_t k = 0; k < n; ++k) {
      syms[k].prev = k - 1;
      syms[k].next = k + 1 < n ? k + 1 : -1;
    }
    struct Cand {
      int32_t rank, pos, new_id;
      bool operator<(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }  // min-heap
    };
    std::priority_queue<Cand> heap;
    auto push_pair = [&](int32_t a) {
      if (a < 0) return;
      int32_t b = syms[a].next;
      if (b < 0) return;
      auto it = merges_.find(key(syms[a].id, syms[b].id));
      if (it != merges_.end()) heap.push({it->second.first, a, it->second.second});
    };
    for (int32_t k = 0; k + 1 < n; ++k) push_pair(k);
    while (!heap.empty()) {
      Cand c = heap.top();
      heap.pop();
      Symbol& a = syms[c.pos];
      if (a.len == 0 || a.next < 0) continue;
      Symbol& b = syms[a.next];
      auto it = merges_.find(key(a.id, b.id));
      if (it == merges_.end() || it->second.second != c.new_id || it->second.first != c.rank) continue;
      a.id = c.new_id;
      a.len += b.len;
      b.len = 0;
      a.next = b.next;
      if (b.next >= 0) syms[b.next].prev = c.pos;
      push_pair(a.prev);
      push_pair(c.pos);
    }
    for (int32_t k = n > 0 ? 0 : -1; k >= 0; k = syms[k].next) out.push_back(syms[k].id);
  }

  void push_unk(std::vector<Symbol>& syms, size_t len, bool& last_unk) const {
    if (!unk_id_) return;  // no unk token: the character is dropped
    if (fuse_unk_ && last_unk && !syms.empty()) {
      syms.back().len += len;
    } else {
      syms.push_back({*unk_id_, 0, 0, len});
    }
    last_unk = true;
  }

  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;  // (a, b) -> (rank, merged id)
  std::string prefix_, suffix_;
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

Result<std::unique_ptr<Model>> make_model(const Json& j, const std::string& file) {
  if (!j.is_object()) return load_error(file, "missing 'model' object");
  std::string type = j.value("type", std::string());
  if (type.empty()) {  // older files omit the type
    if (j.contains("merges")) type = "BPE";
    else if (j.contains("unk_id") || (j.contains("vocab") && j["vocab"].is_array())) type = "Unigram";
    else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) type = "WordPiece";
  }
  if (type == "WordPiece") return WordPiece::create(j, file);
  if (type == "BPE") return Bpe::create(j, file);
  if (type == "Unigram") return make_unigram(j, file);
  return load_error(file, "unsupported model type '" + type + "'");
}

}  // namespace fathom::formats::tok
