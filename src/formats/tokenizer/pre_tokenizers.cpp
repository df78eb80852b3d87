// Pre-tokenizers of tokenizer.json.
#include <functional>

#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

namespace {

// Each character satisfying `pred` is one match segment.
std::vector<Segment> char_segments(std::string_view s, const std::function<bool(char32_t)>& pred) {
  std::vector<Segment> out;
  size_t prev = 0;
  for (size_t i = 0; i < s.size();) {
    int len;
    char32_t c = u::decode_at(s, i, &len);
    if (pred(c)) {
      if (i > prev) out.push_back({prev, i, false});
      out.push_back({i, i + len, true});
      prev = i + len;
    }
    i += len;
  }
  if (prev < s.size()) out.push_back({prev, s.size(), false});
  return out;
}

void split_all(std::vector<std::string>& pieces, const std::function<std::vector<Segment>(std::string_view)>& find,
               SplitBehavior behavior) {
  std::vector<std::string> out;
  out.reserve(pieces.size() * 2);
  for (const std::string& p : pieces) split_pieces(p, find(p), behavior, out);
  pieces = std::move(out);
}

class BertPreTokenizer final : public PreTokenizer {
 public:
  void apply(std::vector<std::string>& pieces, bool) const override {
    split_all(pieces, [](std::string_view s) { return char_segments(s, u::is_whitespace); }, SplitBehavior::kRemoved);
    split_all(pieces, [](std::string_view s) { return char_segments(s, u::is_bert_punctuation); },
              SplitBehavior::kIsolated);
  }
};

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void apply(std::vector<std::string>& pieces, bool) const override {
    if (add_prefix_space_)
      for (std::string& p : pieces)
        if (p.empty() || p[0] != ' ') p.insert(p.begin(), ' ');
    if (use_regex_) split_all(pieces, gpt2_split, SplitBehavior::kIsolated);
    const auto& map = byte_to_unicode();
    for (std::string& p : pieces) {
      std::string mapped;
      mapped.reserve(p.size() * 2);
      for (unsigned char c : p) mapped += map[c];
      p = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
};

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(std::shared_ptr<const Pattern> pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void apply(std::vector<std::string>& pieces, bool) const override {
    split_all(pieces, [this](std::string_view s) {
      auto segs = pattern_->find(s);
      if (invert_)
        for (Segment& g : segs) g.match = !g.match;
      return segs;
    }, behavior_);
  }

 private:
  std::shared_ptr<const Pattern> pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void apply(std::vector<std::string>& pieces, bool first) const override {
    for (const auto& p : parts_) p->apply(pieces, first);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// `\w+|[^\w\s]+`, whitespace removed.
class WhitespacePreTokenizer final : public PreTokenizer {
 public:
  void apply(std::vector<std::string>& pieces, bool) const override {
    split_all(pieces, [](std::string_view s) {
      std::vector<Segment> out;
      size_t i = 0;
      while (i < s.size()) {
        int len;
        char32_t c = u::decode_at(s, i, &len);
        int k = u::is_word_char(c) ? 0 : u::is_whitespace(c) ? 1 : 2;
        size_t j = i + len;
        while (j < s.size()) {
          int l;
          char32_t d = u::decode_at(s, j, &l);
          int kd = u::is_word_char(d) ? 0 : u::is_whitespace(d) ? 1 : 2;
          if (kd != k) break;
          j += l;
        }
        out.push_back({i, j, k != 1});
        i = j;
      }
      for (Segment& g : out) g.match = !g.match;  // matches are the kept words: remove the rest
      return out;
    }, SplitBehavior::kRemoved);
  }
};

class WhitespaceSplitPreTokenizer final : public PreTokenizer {
 public:
  void apply(std::vector<std::string>& pieces, bool) const override {
    split_all(pieces, [](std::string_view s) { return char_segments(s, u::is_whitespace); }, SplitBehavior::kRemoved);
  }
};

class CharClassPreTokenizer final : public PreTokenizer {
 public:
  CharClassPreTokenizer(bool (*pred)(char32_t), SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void apply(std::vector<std::string>& pieces, bool) const override {
    split_all(pieces, [this](std::string_view s) { return char_segments(s, pred_); }, behavior_);
  }

 private:
  bool (*pred_)(char32_t);
  SplitBehavior behavior_;
};

class MetaspacePreTokenizer final : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, std::string scheme, bool split)
      : replacement_(std::move(replacement)), scheme_(std::move(scheme)), split_(split) {}
  void apply(std::vector<std::string>& pieces, bool first) const override {
    for (size_t k = 0; k < pieces.size(); ++k) {
      std::string& p = pieces[k];
      std::string out;
      for (char c : p) {
        if (c == ' ') out += replacement_;
        else out.push_back(c);
      }
      bool prepend = scheme_ == "always" || (scheme_ == "first" && first && k == 0);
      if (prepend && out.compare(0, replacement_.size(), replacement_) != 0) out = replacement_ + out;
      p = std::move(out);
    }
    if (split_) {
      auto pattern = Pattern::from_literal(replacement_);
      split_all(pieces, [&](std::string_view s) { return pattern->find(s); }, SplitBehavior::kMergedWithNext);
    }
  }

 private:
  std::string replacement_, scheme_;
  bool split_;
};

}  // namespace

Result<std::unique_ptr<PreTokenizer>> make_pre_tokenizer(const Json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return load_error(file, "pre_tokenizer without a type: " + j.dump().substr(0, 200));
  const std::string type = j["type"].get<std::string>();
  using Ptr = std::unique_ptr<PreTokenizer>;
  if (type == "BertPreTokenizer") return Ptr(std::make_unique<BertPreTokenizer>());
  if (type == "ByteLevel")
    return Ptr(std::make_unique<ByteLevelPreTokenizer>(get_bool(j, "add_prefix_space", true),
                                                       get_bool(j, "use_regex", true)));
  if (type == "Split") {
    if (!j.contains("pattern")) return load_error(file, "Split pre_tokenizer without a pattern");
    FATHOM_ASSIGN_OR_RETURN(auto pattern, Pattern::from_json(j["pattern"], file));
    FATHOM_ASSIGN_OR_RETURN(SplitBehavior behavior, parse_behavior(j.value("behavior", Json("Isolated")), file));
    return Ptr(std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, get_bool(j, "invert", false)));
  }
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      return load_error(file, "Sequence pre_tokenizer without a 'pretokenizers' list");
    std::vector<Ptr> parts;
    for (const Json& part : j["pretokenizers"]) {
      FATHOM_ASSIGN_OR_RETURN(auto p, make_pre_tokenizer(part, file));
      parts.push_back(std::move(p));
    }
    return Ptr(std::make_unique<SequencePreTokenizer>(std::move(parts)));
  }
  if (type == "Whitespace") return Ptr(std::make_unique<WhitespacePreTokenizer>());
  if (type == "WhitespaceSplit") return Ptr(std::make_unique<WhitespaceSplitPreTokenizer>());
  if (type == "Punctuation") {
    FATHOM_ASSIGN_OR_RETURN(SplitBehavior behavior, parse_behavior(j.value("behavior", Json("Isolated")), file));
    return Ptr(std::make_unique<CharClassPreTokenizer>(u::is_bert_punctuation, behavior));
  }
  if (type == "Digits") {
    bool individual = get_bool(j, "individual_digits", false);
    return Ptr(std::make_unique<CharClassPreTokenizer>(
        u::is_number, individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous));
  }
  if (type == "Metaspace") {
    std::string replacement = j.value("replacement", std::string("\xE2\x96\x81"));
    std::string scheme = "always";
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) scheme = j["prepend_scheme"].get<std::string>();
    else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean())
      scheme = j["add_prefix_space"].get<bool>() ? "always" : "never";
    return Ptr(std::make_unique<MetaspacePreTokenizer>(replacement, scheme, get_bool(j, "split", true)));
  }
  return load_error(file, "unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace fathom::formats::tok
