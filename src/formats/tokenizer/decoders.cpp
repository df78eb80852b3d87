// Decoders of tokenizer.json.
#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  for (size_t hit = s.find(from); hit != std::string::npos; hit = s.find(from, pos)) {
    out.append(s, pos, hit - pos);
    out.append(to);
    pos = hit + from.size();
  }
  if (pos == 0) return;
  out.append(s, pos, std::string::npos);
  s = std::move(out);
}

// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes one U+FFFD.
std::string from_utf8_lossy(const std::string& bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t n = bytes.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) { out.push_back(static_cast<char>(c)); ++i; continue; }
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) { need = 2; lo = 0xA0; }
    else if (c >= 0xE1 && c <= 0xEC) need = 2;
    else if (c == 0xED) { need = 2; hi = 0x9F; }
    else if (c >= 0xEE && c <= 0xEF) need = 2;
    else if (c == 0xF0) { need = 3; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else if (c == 0xF4) { need = 3; hi = 0x8F; }
    else { out += "\xEF\xBF\xBD"; ++i; continue; }
    size_t j = i + 1;
    bool ok = true;
    for (int k = 0; k < need; ++k, ++j) {
      unsigned char l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
      if (j >= n || p[j] < l || p[j] > h) { ok = false; break; }
    }
    if (ok) out.append(bytes, i, j - i);
    else out += "\xEF\xBF\xBD";
    i = j;
  }
  return out;
}

// The space clean-up shared by transformers' clean_up_tokenization and the WordPiece decoder's cleanup;
// the latter also turns " do not" into " don't" (`do_not`), at its place in the sequence of replacements.
std::string clean_up_spaces(std::string s, bool do_not) {
  replace_all(s, " .", ".");
  replace_all(s, " ?", "?");
  replace_all(s, " !", "!");
  replace_all(s, " ,", ",");
  replace_all(s, " ' ", "'");
  replace_all(s, " n't", "n't");
  replace_all(s, " 'm", "'m");
  if (do_not) replace_all(s, " do not", " don't");
  replace_all(s, " 's", "'s");
  replace_all(s, " 've", "'ve");
  replace_all(s, " 're", "'re");
  return s;
}

std::string wordpiece_cleanup(std::string s) { return clean_up_spaces(std::move(s), /*do_not=*/true); }

class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t mark = bytes.size();
      bool all = true;
      for (size_t i = 0; i < t.size();) {
        int len;
        int b = unicode_to_byte(u::decode_at(t, i, &len));
        if (b < 0) { all = false; break; }
        bytes.push_back(static_cast<char>(b));
        i += len;
      }
      if (!all) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, from_utf8_lossy(bytes));
  }
};

class WordPieceDecoder final : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (!prefix_.empty() && t.compare(0, prefix_.size(), prefix_) == 0) t.erase(0, prefix_.size());
        else t.insert(t.begin(), ' ');
      }
      if (cleanup_) t = wordpiece_cleanup(std::move(t));
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::shared_ptr<const Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) t = pattern_->replace_all(t, content_);
  }

 private:
  std::shared_ptr<const Pattern> pattern_;
  std::string content_;
};

class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop) : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    if (content_.empty()) return;
    for (std::string& t : tokens) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start_ && t.compare(b, content_.size(), content_) == 0 && b + content_.size() <= e; ++k)
        b += content_.size();
      for (size_t k = 0; k < stop_ && e >= b + content_.size() &&
                         t.compare(e - content_.size(), content_.size(), content_) == 0; ++k)
        e -= content_.size();
      t = t.substr(b, e - b);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    size_t pending_count = 0;
    auto flush = [&] {
      if (pending_count == 0) return;
      if (u::is_valid_utf8(pending)) out.push_back(pending);
      else
        for (size_t k = 0; k < pending_count; ++k) out.push_back("\xEF\xBF\xBD");
      pending.clear();
      pending_count = 0;
    };
    for (std::string& t : tokens) {
      unsigned v = 0;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::sscanf(t.c_str() + 3, "%2x", &v) == 1) {
        pending.push_back(static_cast<char>(v));
        ++pending_count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string replacement, bool strip_first) : replacement_(std::move(replacement)), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) replace_all(tokens[i], replacement_, i == 0 && strip_first_ ? "" : " ");
  }

 private:
  std::string replacement_;
  bool strip_first_;
};

}  // namespace

std::string clean_up_tokenization(std::string s) { return clean_up_spaces(std::move(s), /*do_not=*/false); }

Result<std::unique_ptr<Decoder>> make_decoder(const Json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return load_error(file, "decoder without a type: " + j.dump().substr(0, 200));
  const std::string type = j["type"].get<std::string>();
  using Ptr = std::unique_ptr<Decoder>;
  if (type == "ByteLevel") return Ptr(std::make_unique<ByteLevelDecoder>());
  if (type == "WordPiece") {
    std::string prefix = j.contains("prefix") && j["prefix"].is_string() ? j["prefix"].get<std::string>() : "##";
    bool cleanup = !(j.contains("cleanup") && j["cleanup"].is_boolean()) || j["cleanup"].get<bool>();
    return Ptr(std::make_unique<WordPieceDecoder>(prefix, cleanup));
  }
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array())
      return load_error(file, "Sequence decoder without a 'decoders' list");
    std::vector<Ptr> parts;
    for (const Json& part : j["decoders"]) {
      FATHOM_ASSIGN_OR_RETURN(auto p, make_decoder(part, file));
      parts.push_back(std::move(p));
    }
    return Ptr(std::make_unique<SequenceDecoder>(std::move(parts)));
  }
  if (type == "Replace") {
    if (!j.contains("pattern") || !j.contains("content") || !j["content"].is_string())
      return load_error(file, "Replace decoder needs 'pattern' and 'content'");
    FATHOM_ASSIGN_OR_RETURN(auto pattern, Pattern::from_json(j["pattern"], file));
    return Ptr(std::make_unique<ReplaceDecoder>(std::move(pattern), j["content"].get<std::string>()));
  }
  if (type == "Strip") {
    std::string content = j.contains("content") && j["content"].is_string() ? j["content"].get<std::string>() : " ";
    size_t start = j.contains("start") && j["start"].is_number_unsigned() ? j["start"].get<size_t>() : 0;
    size_t stop = j.contains("stop") && j["stop"].is_number_unsigned() ? j["stop"].get<size_t>() : 0;
    return Ptr(std::make_unique<StripDecoder>(content, start, stop));
  }
  if (type == "Fuse") return Ptr(std::make_unique<FuseDecoder>());
  if (type == "ByteFallback") return Ptr(std::make_unique<ByteFallbackDecoder>());
  if (type == "Metaspace") {
    std::string replacement = j.contains("replacement") && j["replacement"].is_string()
                                  ? j["replacement"].get<std::string>() : std::string("\xE2\x96\x81");
    bool strip_first = true;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) strip_first = j["prepend_scheme"] != "never";
    else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean()) strip_first = j["add_prefix_space"].get<bool>();
    return Ptr(std::make_unique<MetaspaceDecoder>(replacement, strip_first));
  }
  return load_error(file, "unsupported decoder type '" + type + "'");
}

}  // namespace fathom::formats::tok
