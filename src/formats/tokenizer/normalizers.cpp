// Normalizers of tokenizer.json.
#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

namespace {

std::string strip_nonspacing_marks(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    int len;
    char32_t c = u::decode_at(s, i, &len);
    if (!u::is_nonspacing_mark(c)) out.append(s, i, len);
    i += len;
  }
  return out;
}

class BertNormalizer final : public Normalizer {
 public:
  BertNormalizer(bool clean, bool chinese, bool strip, bool lower)
      : clean_(clean), chinese_(chinese), strip_(strip), lower_(lower) {}
  std::string normalize(std::string s) const override {
    if (clean_ || chinese_) {
      std::string out;
      out.reserve(s.size() + 16);
      for (size_t i = 0; i < s.size();) {
        int len;
        char32_t c = u::decode_at(s, i, &len);
        i += len;
        if (clean_) {
          bool control = c != '\t' && c != '\n' && c != '\r' && u::is_other(c);
          if (c == 0 || c == 0xFFFD || control) continue;
          if (u::is_whitespace(c)) c = ' ';
        }
        if (chinese_ && u::is_chinese_char(c)) {
          out.push_back(' ');
          u::append_utf8(out, c);
          out.push_back(' ');
        } else {
          u::append_utf8(out, c);
        }
      }
      s = std::move(out);
    }
    if (strip_) s = strip_nonspacing_marks(u::normalize(s, u::NormalForm::kNFD));
    if (lower_) s = u::lowercase(s);
    return s;
  }

 private:
  bool clean_, chinese_, strip_, lower_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  std::string normalize(std::string s) const override {
    for (const auto& p : parts_) s = p->normalize(std::move(s));
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer final : public Normalizer {
 public:
  explicit UnicodeNormalizer(u::NormalForm form) : form_(form) {}
  std::string normalize(std::string s) const override { return u::normalize(s, form_); }

 private:
  u::NormalForm form_;
};

class LowercaseNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string s) const override { return u::lowercase(s); }
};

class StripAccentsNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string s) const override { return strip_nonspacing_marks(s); }
};

class StripNormalizer final : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string s) const override {
    std::vector<char32_t> cps;
    std::vector<size_t> off;
    u::decode_all(s, cps, &off);
    size_t b = 0, e = cps.size();
    if (left_)
      while (b < e && u::is_whitespace(cps[b])) ++b;
    if (right_)
      while (e > b && u::is_whitespace(cps[e - 1])) --e;
    return s.substr(off[b], off[e] - off[b]);
  }

 private:
  bool left_, right_;
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(std::shared_ptr<const Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string s) const override { return pattern_->replace_all(s, content_); }

 private:
  std::shared_ptr<const Pattern> pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string s) const override { return s.empty() ? s : prefix_ + s; }

 private:
  std::string prefix_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> make_normalizer(const Json& j, const std::string& file) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    return load_error(file, "normalizer without a type: " + j.dump().substr(0, 200));
  const std::string type = j["type"].get<std::string>();
  if (type == "BertNormalizer") {
    bool lower = get_bool(j, "lowercase", true);
    bool strip = j.contains("strip_accents") && j["strip_accents"].is_boolean() ? j["strip_accents"].get<bool>() : lower;
    return std::unique_ptr<Normalizer>(std::make_unique<BertNormalizer>(
        get_bool(j, "clean_text", true), get_bool(j, "handle_chinese_chars", true), strip, lower));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    if (!j.contains("normalizers") || !j["normalizers"].is_array())
      return load_error(file, "Sequence normalizer without a 'normalizers' list");
    for (const Json& part : j["normalizers"]) {
      FATHOM_ASSIGN_OR_RETURN(auto p, make_normalizer(part, file));
      parts.push_back(std::move(p));
    }
    return std::unique_ptr<Normalizer>(std::make_unique<SequenceNormalizer>(std::move(parts)));
  }
  if (type == "NFC") return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(u::NormalForm::kNFC));
  if (type == "NFD") return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(u::NormalForm::kNFD));
  if (type == "NFKC") return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(u::NormalForm::kNFKC));
  if (type == "NFKD") return std::unique_ptr<Normalizer>(std::make_unique<UnicodeNormalizer>(u::NormalForm::kNFKD));
  if (type == "Lowercase") return std::unique_ptr<Normalizer>(std::make_unique<LowercaseNormalizer>());
  if (type == "StripAccents") return std::unique_ptr<Normalizer>(std::make_unique<StripAccentsNormalizer>());
  if (type == "Strip")
    return std::unique_ptr<Normalizer>(
        std::make_unique<StripNormalizer>(get_bool(j, "strip_left", true), get_bool(j, "strip_right", true)));
  if (type == "Replace") {
    if (!j.contains("pattern") || !j.contains("content") || !j["content"].is_string())
      return load_error(file, "Replace normalizer needs 'pattern' and 'content'");
    FATHOM_ASSIGN_OR_RETURN(auto pattern, Pattern::from_json(j["pattern"], file));
    return std::unique_ptr<Normalizer>(
        std::make_unique<ReplaceNormalizer>(std::move(pattern), j["content"].get<std::string>()));
  }
  if (type == "Prepend") {
    if (!j.contains("prepend") || !j["prepend"].is_string())
      return load_error(file, "Prepend normalizer needs 'prepend'");
    return std::unique_ptr<Normalizer>(std::make_unique<PrependNormalizer>(j["prepend"].get<std::string>()));
  }
  if (type == "Precompiled") return make_precompiled_normalizer(j, file);
  return load_error(file, "unsupported normalizer type '" + type + "'");
}

}  // namespace fathom::formats::tok
