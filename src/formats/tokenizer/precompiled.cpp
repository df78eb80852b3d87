// The "Precompiled" normalizer: SentencePiece's compiled normalisation rules (precompiled_charsmap,
// e.g. nmt_nfkc for XLM-RoBERTa), applied as Hugging Face `tokenizers` applies them.
//
// precompiled_charsmap (base64 in tokenizer.json) is a little-endian u32 trie size in bytes, a darts-clone
// double-array trie of that size (u32 units) mapping UTF-8 strings to offsets, then a blob of
// NUL-terminated normalized strings. `tokenizers` walks the text by extended grapheme cluster: a cluster
// shorter than 6 bytes whose beginning is a key (shortest match) is replaced as a whole by that key's
// string; otherwise each character is replaced by its own entry or kept.
#include <utf8proc.h>

#include <cstdint>
#include <optional>
#include <string_view>

#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

class PrecompiledNormalizer final : public Normalizer {
 public:
  PrecompiledNormalizer(std::vector<uint32_t> units, std::string normalized)
      : units_(std::move(units)), normalized_(std::move(normalized)) {}

  std::string normalize(std::string s) const override {
    std::string out;
    out.reserve(s.size() + s.size() / 8);
    size_t g = 0;  // start of the current grapheme cluster
    utf8proc_int32_t state = 0;
    char32_t prev = 0;
    for (size_t i = 0; i <= s.size();) {
      int len = 0;
      char32_t c = 0;
      bool boundary = i == s.size();
      if (!boundary) {
        c = unicode::decode_at(s, i, &len);
        boundary = i > g && utf8proc_grapheme_break_stateful(static_cast<utf8proc_int32_t>(prev),
                                                             static_cast<utf8proc_int32_t>(c), &state);
      }
      if (boundary && i > g) {
        append_cluster(std::string_view(s).substr(g, i - g), out);
        g = i;
      }
      if (i == s.size()) break;
      prev = c;
      i += static_cast<size_t>(len);
    }
    return out;
  }

 private:
  void append_cluster(std::string_view cluster, std::string& out) const {
    if (cluster.size() < 6) {
      if (auto norm = transform(cluster)) {
        out += *norm;
        return;
      }
    }
    for (size_t i = 0; i < cluster.size();) {
      int len;
      unicode::decode_at(cluster, i, &len);
      std::string_view ch = cluster.substr(i, static_cast<size_t>(len));
      if (auto norm = transform(ch))
        out += *norm;
      else
        out += ch;
      i += static_cast<size_t>(len);
    }
  }

  // The normalized string of the shortest key that prefixes `chunk`, if any.
  std::optional<std::string_view> transform(std::string_view chunk) const {
    auto offset = [](uint32_t unit) -> size_t { return (unit >> 10) << ((unit & (1u << 9)) >> 6); };
    auto label = [](uint32_t unit) { return unit & ((1u << 31) | 0xFFu); };
    auto has_leaf = [](uint32_t unit) { return ((unit >> 8) & 1u) == 1u; };
    auto value = [](uint32_t unit) { return unit & ((1u << 31) - 1u); };
    if (units_.empty()) return std::nullopt;
    size_t pos = offset(units_[0]);
    for (char ch : chunk) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == 0) break;
      pos ^= c;
      if (pos >= units_.size()) return std::nullopt;
      const uint32_t unit = units_[pos];
      if (label(unit) != c) return std::nullopt;
      pos ^= offset(unit);
      if (pos >= units_.size()) return std::nullopt;
      if (has_leaf(unit)) {
        const size_t index = value(units_[pos]);
        if (index >= normalized_.size()) return std::nullopt;
        size_t stop = normalized_.find('\0', index);
        if (stop == std::string::npos) stop = normalized_.size();
        std::string_view result = std::string_view(normalized_).substr(index, stop - index);
        if (!unicode::is_valid_utf8(result)) return std::nullopt;
        return result;
      }
    }
    return std::nullopt;
  }

  std::vector<uint32_t> units_;
  std::string normalized_;
};

}  // namespace

Result<std::unique_ptr<Normalizer>> make_precompiled_normalizer(const Json& j, const std::string& file) {
  const std::string what = "Precompiled normalizer: ";
  if (!j.contains("precompiled_charsmap") || !j["precompiled_charsmap"].is_string())
    return load_error(file, what + "'precompiled_charsmap' must be a base64 string");
  auto blob = base64_decode(j["precompiled_charsmap"].get<std::string>());
  if (!blob) return load_error(file, what + "precompiled_charsmap is not valid base64");
  if (blob->size() < 4)
    return load_error(file, what + "precompiled_charsmap is shorter than its 4-byte header");
  const auto* p = reinterpret_cast<const unsigned char*>(blob->data());
  const uint32_t trie_bytes = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
  if (trie_bytes % 4 != 0 || trie_bytes > blob->size() - 4)
    return load_error(file, what + "precompiled_charsmap trie size " + std::to_string(trie_bytes) +
                                " does not fit its " + std::to_string(blob->size() - 4) + " bytes of data");
  std::vector<uint32_t> units(trie_bytes / 4);
  for (size_t k = 0; k < units.size(); ++k) {
    const unsigned char* u = p + 4 + 4 * k;
    units[k] = u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
  }
  std::string normalized = blob->substr(4 + trie_bytes);
  if (!unicode::is_valid_utf8(normalized))
    return load_error(file, what + "the normalized strings of precompiled_charsmap are not valid UTF-8");
  return std::unique_ptr<Normalizer>(
      std::make_unique<PrecompiledNormalizer>(std::move(units), std::move(normalized)));
}

}  // namespace fathom::formats::tok
