// Patterns, splitting behaviours and the byte-level alphabet.
#include <re2/re2.h>

#include <algorithm>
#include <unordered_map>

#include "formats/tokenizer/components.h"
#include "formats/tokenizer/unicode.h"

namespace fathom::formats::tok {

namespace u = unicode;

Error load_error(const std::string& file, const std::string& what) {
  return make_error(ErrorCode::kLoadFailed, file + ": " + what);
}

// ---------------------------------------------------------------------------------------------
// Byte-level alphabet

namespace {
struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::unordered_map<char32_t, int> to_byte;
  ByteTables() {
    std::array<char32_t, 256> map{};
    std::array<bool, 256> direct{};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    int n = 0;
    for (int b = 0; b < 256; ++b) map[b] = direct[b] ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
    for (int b = 0; b < 256; ++b) {
      to_unicode[b] = u::to_utf8(map[b]);
      to_byte[map[b]] = b;
    }
  }
};
const ByteTables& byte_tables() {
  static const ByteTables tables;
  return tables;
}
}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return byte_tables().to_unicode; }

int unicode_to_byte(char32_t c) {
  const auto& m = byte_tables().to_byte;
  auto it = m.find(c);
  return it == m.end() ? -1 : it->second;
}

// ---------------------------------------------------------------------------------------------
// GPT-2 split

std::vector<Segment> gpt2_split(std::string_view s) {
  std::vector<char32_t> cp;
  std::vector<size_t> off;
  u::decode_all(s, cp, &off);
  const size_t n = cp.size();
  std::vector<Segment> out;
  auto cls = [&](size_t i) {  // 0 letter, 1 number, 2 space, 3 other
    char32_t c = cp[i];
    return u::is_letter(c) ? 0 : u::is_number(c) ? 1 : u::is_whitespace(c) ? 2 : 3;
  };
  size_t i = 0;
  while (i < n) {
    size_t end = i;
    // 's|'t|'re|'ve|'m|'ll|'d
    if (cp[i] == '\'' && i + 1 < n) {
      char32_t a = cp[i + 1];
      char32_t b = i + 2 < n ? cp[i + 2] : 0;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') end = i + 2;
      else if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) end = i + 3;
    }
    if (end == i) {
      size_t j = i;
      if (cp[i] == ' ' && i + 1 < n && cls(i + 1) != 2) ++j;  // ` ?` before a letter/number/other run
      int k = cls(j);
      if (k != 2) {
        end = j + 1;
        while (end < n && cls(end) == k) ++end;
      } else {
        // \s+(?!\S) | \s+
        size_t r = i;
        while (r < n && cls(r) == 2) ++r;
        end = r;
        if (r < n && r - i > 1) end = r - 1;
      }
    }
    out.push_back({off[i], off[end], true});
    i = end;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pattern

namespace {
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* kSpaceTail = R"(|\s+(?!\S)|\s+)";

// Rewrites the Unicode-aware Perl classes of Rust's regex crate for RE2 (whose \s, \d, \w are ASCII).
Result<std::string> translate_regex(const std::string& p, const std::string& file) {
  static const std::string kSpace = R"(\t-\r\x{85}\p{Z})";
  static const std::string kDigit = R"(\p{Nd})";
  static const std::string kWord = R"(\p{L}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D})";
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      const std::string* body = e == 's' || e == 'S' ? &kSpace : e == 'd' || e == 'D' ? &kDigit
                                : e == 'w' || e == 'W' ? &kWord : nullptr;
      if (body) {
        bool neg = e == 'S' || e == 'D' || e == 'W';
        if (in_class) {
          if (neg) return load_error(file, "regex class \\" + std::string(1, e) + " inside [] is not supported: " + p);
          out += *body;
        } else {
          out += neg ? "[^" + *body + "]" : "[" + *body + "]";
        }
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (c == '[' && !in_class) in_class = true;
    else if (c == ']' && in_class) in_class = false;
    out += c;
  }
  return out;
}
}  // namespace

Pattern::~Pattern() = default;

std::shared_ptr<const Pattern> Pattern::from_literal(std::string literal) {
  std::shared_ptr<Pattern> p(new Pattern());
  p->kind_ = Kind::kLiteral;
  p->literal_ = std::move(literal);
  return p;
}

Result<std::shared_ptr<const Pattern>> Pattern::from_regex(const std::string& regex, const std::string& file) {
  std::shared_ptr<Pattern> p(new Pattern());
  if (regex == kGpt2Pattern) {
    p->kind_ = Kind::kGpt2;
    return std::shared_ptr<const Pattern>(p);
  }
  std::string body = regex;
  p->kind_ = Kind::kRegex;
  const std::string tail = kSpaceTail;
  if (body.size() > tail.size() && body.compare(body.size() - tail.size(), tail.size(), tail) == 0) {
    body.resize(body.size() - tail.size());
    p->kind_ = Kind::kRegexWithSpaceTail;
  }
  FATHOM_ASSIGN_OR_RETURN(std::string translated, translate_regex(body, file));
  RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(RE2::Options::EncodingUTF8);
  p->re_ = std::make_unique<RE2>(translated, options);
  if (!p->re_->ok())
    return load_error(file, "unsupported regex pattern '" + regex + "': " + p->re_->error());
  return std::shared_ptr<const Pattern>(p);
}

Result<std::shared_ptr<const Pattern>> Pattern::from_json(const Json& j, const std::string& file) {
  if (j.is_object() && j.contains("String") && j["String"].is_string())
    return from_literal(j["String"].get<std::string>());
  if (j.is_object() && j.contains("Regex") && j["Regex"].is_string())
    return from_regex(j["Regex"].get<std::string>(), file);
  return load_error(file, "pattern must be {\"String\": ...} or {\"Regex\": ...}, got " + j.dump());
}

std::vector<Segment> Pattern::find(std::string_view s) const {
  std::vector<Segment> out;
  if (kind_ == Kind::kGpt2) return gpt2_split(s);
  size_t prev = 0;
  auto push_match = [&](size_t b, size_t e) {
    if (b > prev) out.push_back({prev, b, false});
    out.push_back({b, e, true});
    prev = e;
  };
  if (kind_ == Kind::kLiteral) {
    if (!literal_.empty()) {
      for (size_t pos = s.find(literal_); pos != std::string_view::npos; pos = s.find(literal_, pos)) {
        push_match(pos, pos + literal_.size());
        pos += literal_.size();
      }
    }
  } else if (kind_ == Kind::kRegex) {
    re2::StringPiece text(s.data(), s.size());
    re2::StringPiece m;
    size_t pos = 0;
    while (pos <= s.size() && re_->Match(text, pos, s.size(), RE2::UNANCHORED, &m, 1)) {
      size_t b = static_cast<size_t>(m.data() - s.data()), e = b + m.size();
      if (e == b) {  // empty match: step over one character
        if (b >= s.size()) break;
        int len;
        u::decode_at(s, b, &len);
        pos = b + len;
        continue;
      }
      push_match(b, e);
      pos = e;
    }
  } else {
    // Regex alternatives tried anchored at each position, then `\s+(?!\S)|\s+`.
    re2::StringPiece text(s.data(), s.size());
    re2::StringPiece m;
    size_t pos = 0;
    while (pos < s.size()) {
      if (re_->Match(text, pos, s.size(), RE2::ANCHOR_START, &m, 1) && !m.empty()) {
        push_match(pos, pos + m.size());
        pos += m.size();
        continue;
      }
      int len;
      char32_t c = u::decode_at(s, pos, &len);
      if (!u::is_whitespace(c)) {
        pos += len;
        continue;
      }
      size_t r = pos, last = pos, count = 0;
      while (r < s.size()) {
        int l;
        char32_t d = u::decode_at(s, r, &l);
        if (!u::is_whitespace(d)) break;
        last = r;
        r += l;
        ++count;
      }
      size_t end = (r < s.size() && count > 1) ? last : r;
      push_match(pos, end);
      pos = end;
    }
  }
  if (prev < s.size()) out.push_back({prev, s.size(), false});
  return out;
}

std::string Pattern::replace_all(std::string_view s, std::string_view content) const {
  std::string out;
  for (const Segment& seg : find(s)) {
    if (seg.match) out += content;
    else out.append(s.substr(seg.begin, seg.end - seg.begin));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Split behaviours

Result<SplitBehavior> parse_behavior(const Json& j, const std::string& file) {
  std::string b = j.is_string() ? j.get<std::string>() : "";
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return load_error(file, "unsupported split behavior " + j.dump());
}

void split_pieces(std::string_view s, std::vector<Segment> segs, SplitBehavior behavior,
                  std::vector<std::string>& out) {
  std::vector<Segment> merged;
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      merged = std::move(segs);
      break;
    case SplitBehavior::kRemoved:
      for (const Segment& g : segs)
        if (!g.match) merged.push_back(g);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const Segment& g : segs) {
        if (g.match && !prev_match && !merged.empty()) merged.back().end = g.end;
        else merged.push_back(g);
        prev_match = g.match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = segs.size(); k-- > 0;) {
        const Segment& g = segs[k];
        if (g.match && !prev_match && !merged.empty()) merged.back().begin = g.begin;
        else merged.push_back(g);
        prev_match = g.match;
      }
      std::reverse(merged.begin(), merged.end());
      break;
    case SplitBehavior::kContiguous:
      for (const Segment& g : segs) {
        if (g.match == prev_match && !merged.empty()) merged.back().end = g.end;
        else merged.push_back(g);
        prev_match = g.match;
      }
      break;
  }
  for (const Segment& g : merged)
    if (g.end > g.begin) out.emplace_back(s.substr(g.begin, g.end - g.begin));
}

}  // namespace fathom::formats::tok
