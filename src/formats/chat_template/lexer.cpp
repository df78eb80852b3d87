#include "formats/chat_template/lexer.h"

#include <cstring>

#include "formats/chat_template/value.h"

namespace fathom::formats::jinja {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(const std::string& src) : src_(src) {}

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < src_.size()) {
      size_t start = find_tag(pos);
      if (start == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      std::string text = src_.substr(pos, start - pos);
      char kind = src_[start + 1];  // '{', '%' or '#'
      size_t inner = start + 2;
      char mod = inner < src_.size() ? src_[inner] : 0;
      if (mod == '-') {
        size_t e = text.size();
        while (e > 0 && is_space(text[e - 1])) --e;
        text.resize(e);
      } else if (kind != '{' && mod != '+') {
        lstrip_line(text, pos);
      }
      if (mod == '-' || (mod == '+' && kind != '{')) ++inner;
      emit_text(std::move(text), pos);
      if (kind == '#') {
        pos = comment(start, inner);
      } else if (kind == '%' && is_raw(inner)) {
        pos = raw(start, inner);
      } else {
        pos = tag(kind, start, inner);
      }
    }
    Token eof;
    eof.type = Token::Type::kEof;
    eof.offset = src_.size();
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  [[noreturn]] void error(size_t offset, const std::string& what) {
    fail(describe_position(src_, offset) + ": " + what);
  }

  size_t find_tag(size_t pos) const {
    while (true) {
      size_t p = src_.find('{', pos);
      if (p == std::string::npos || p + 1 >= src_.size()) return std::string::npos;
      char c = src_[p + 1];
      if (c == '{' || c == '%' || c == '#') return p;
      pos = p + 1;
    }
  }

  // lstrip_blocks: drop spaces/tabs between the line start and a block or comment tag.
  void lstrip_line(std::string& text, size_t text_start) const {
    size_t nl = text.rfind('\n');
    size_t l = nl == std::string::npos ? 0 : nl + 1;
    bool line_start = l > 0 || text_start == 0 || src_[text_start - 1] == '\n';
    if (!line_start) return;
    for (size_t i = l; i < text.size(); ++i)
      if (text[i] != ' ' && text[i] != '\t') return;
    text.resize(l);
  }

  void emit_text(std::string text, size_t offset) {
    if (text.empty()) return;
    Token t;
    t.type = Token::Type::kText;
    t.text = std::move(text);
    t.offset = offset;
    out_.push_back(std::move(t));
  }

  // After a closing delimiter at `end` (just past it): `-` strips all whitespace, else trim_blocks drops one
  // newline after block and comment tags (not after `+`).
  size_t after_close(size_t end, char mod, bool trim) const {
    if (mod == '-') {
      while (end < src_.size() && is_space(src_[end])) ++end;
    } else if (trim && mod != '+' && end < src_.size() && src_[end] == '\n') {
      ++end;
    }
    return end;
  }

  size_t comment(size_t start, size_t inner) {
    size_t e = src_.find("#}", inner);
    if (e == std::string::npos) error(start, "unterminated comment (missing '#}')");
    char mod = e > inner ? src_[e - 1] : 0;
    return after_close(e + 2, mod, true);
  }

  // Position after "raw" keyword if `{% raw %}` starts at inner; else 0.
  bool is_raw(size_t inner) const {
    size_t p = inner;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    if (p < src_.size() && (is_name_start(src_[p]) || is_digit(src_[p]))) return false;
    while (p < src_.size() && is_space(src_[p])) ++p;
    if (p < src_.size() && src_[p] == '-') ++p;
    return src_.compare(p, 2, "%}") == 0;
  }

  size_t raw(size_t start, size_t inner) {
    size_t p = src_.find("%}", inner);
    bool strip_after_open = src_[p - 1] == '-';
    size_t body = p + 2;
    if (strip_after_open)
      while (body < src_.size() && is_space(src_[body])) ++body;
    // Find {% endraw %}.
    size_t q = body;
    while (true) {
      q = src_.find("{%", q);
      if (q == std::string::npos) error(start, "unterminated raw block (missing '{% endraw %}')");
      size_t r = q + 2;
      char mod = r < src_.size() ? src_[r] : 0;
      if (mod == '-' || mod == '+') ++r;
      while (r < src_.size() && is_space(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") == 0) {
        r += 6;
        while (r < src_.size() && is_space(src_[r])) ++r;
        char close_mod = 0;
        if (r < src_.size() && (src_[r] == '-' || src_[r] == '+')) close_mod = src_[r++];
        if (src_.compare(r, 2, "%}") == 0) {
          std::string text = src_.substr(body, q - body);
          if (mod == '-') {
            size_t e = text.size();
            while (e > 0 && is_space(text[e - 1])) --e;
            text.resize(e);
          } else if (mod != '+') {
            lstrip_line(text, body);
          }
          emit_text(std::move(text), body);
          return after_close(r + 2, close_mod, true);
        }
      }
      q += 2;
    }
  }

  size_t tag(char kind, size_t start, size_t p) {
    Token begin;
    begin.type = kind == '{' ? Token::Type::kVarBegin : Token::Type::kBlockBegin;
    begin.offset = start;
    out_.push_back(begin);
    const char close = kind == '{' ? '}' : '%';
    int depth = 0;  // open brackets: a `}}` inside a dict literal does not close the tag
    bool after_dot = false;
    while (true) {
      while (p < src_.size() && is_space(src_[p])) ++p;
      if (p >= src_.size())
        error(start, std::string("unexpected end of template, expected '") + close + "}' to close the tag");
      char c = src_[p];
      if (depth == 0) {
        char mod = 0;
        size_t q = p;
        if ((c == '-' || c == '+') && q + 2 < src_.size() + 1) {
          mod = c;
          ++q;
        }
        if (q + 1 < src_.size() && src_[q] == close && src_[q + 1] == '}' && (mod != '+' || kind == '%')) {
          Token end;
          end.type = kind == '{' ? Token::Type::kVarEnd : Token::Type::kBlockEnd;
          end.offset = p;
          out_.push_back(end);
          return after_close(q + 2, mod, kind == '%');
        }
      }
      Token t;
      t.offset = p;
      if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && (is_name_start(src_[e]) || is_digit(src_[e]))) ++e;
        t.type = Token::Type::kName;
        t.text = src_.substr(p, e - p);
        p = e;
      } else if (is_digit(c)) {
        p = number(p, after_dot, t);
      } else if (c == '\'' || c == '"') {
        p = string_literal(p, t);
      } else {
        static const char* const kTwo[] = {"**", "//", "==", "!=", "<=", ">="};
        t.type = Token::Type::kOp;
        for (const char* op : kTwo)
          if (src_.compare(p, 2, op) == 0) t.text = op;
        if (t.text.empty()) {
          if (!std::strchr("+-*/%~<>=()[]{},.:|", c))
            error(p, std::string("unexpected character '") + c + "'");
          t.text = std::string(1, c);
        }
        p += t.text.size();
        if (t.text == "(" || t.text == "[" || t.text == "{") ++depth;
        if ((t.text == ")" || t.text == "]" || t.text == "}") && depth > 0) --depth;
      }
      after_dot = t.type == Token::Type::kOp && t.text == ".";
      out_.push_back(std::move(t));
    }
  }

  size_t digits(size_t p, std::string& out) const {
    while (p < src_.size() && (is_digit(src_[p]) || (src_[p] == '_' && p + 1 < src_.size() && is_digit(src_[p + 1])))) {
      if (src_[p] != '_') out += src_[p];
      ++p;
    }
    return p;
  }

  size_t number(size_t p, bool after_dot, Token& t) {
    std::string num;
    size_t start = p;
    p = digits(p, num);
    bool is_float = false;
    if (!after_dot && p + 1 < src_.size() && src_[p] == '.' && is_digit(src_[p + 1])) {
      num += '.';
      p = digits(p + 1, num);
      is_float = true;
    }
    if (!after_dot && p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
      size_t q = p + 1;
      std::string exp = "e";
      if (q < src_.size() && (src_[q] == '+' || src_[q] == '-')) exp += src_[q++];
      if (q < src_.size() && is_digit(src_[q])) {
        p = digits(q, exp);
        num += exp;
        is_float = true;
      }
    }
    if (is_float) {
      t.type = Token::Type::kFloat;
      t.float_value = std::strtod(num.c_str(), nullptr);
    } else {
      t.type = Token::Type::kInt;
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(num.c_str(), &end, 10);
      if (errno == ERANGE) error(start, "integer literal too large");
      t.int_value = v;
    }
    t.text = num;
    return p;
  }

  size_t string_literal(size_t p, Token& t) {
    char q = src_[p];
    size_t start = p++;
    std::string out;
    while (true) {
      if (p >= src_.size()) error(start, "unterminated string literal");
      char c = src_[p];
      if (c == q) {
        ++p;
        break;
      }
      if (c != '\\') {
        out += c;
        ++p;
        continue;
      }
      if (p + 1 >= src_.size()) error(start, "unterminated string literal");
      char e = src_[p + 1];
      p += 2;
      auto hex = [&](int n) {
        if (p + n > src_.size()) error(p, "truncated \\x/\\u escape");
        char32_t v = 0;
        for (int i = 0; i < n; ++i) {
          char h = src_[p + i];
          int d = is_digit(h) ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10 : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
          if (d < 0) error(p, "invalid \\x/\\u escape");
          v = v * 16 + d;
        }
        p += n;
        utf8_append(out, v);
      };
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'v': out += '\v'; break;
        case 'a': out += '\a'; break;
        case '0': out += '\0'; break;
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case '\n': break;  // line continuation
        case 'x': hex(2); break;
        case 'u': hex(4); break;
        case 'U': hex(8); break;
        default:
          out += '\\';
          out += e;
      }
    }
    t.type = Token::Type::kString;
    t.text = std::move(out);
    return p;
  }

  const std::string& src_;
  std::vector<Token> out_;
};

}  // namespace

std::string normalize_source(std::string source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(const std::string& source) { return Lexer(source).run(); }

std::string describe_position(const std::string& source, size_t offset) {
  size_t line = 1, col = 1;
  for (size_t i = 0; i < offset && i < source.size(); ++i) {
    if (source[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return "line " + std::to_string(line) + ":" + std::to_string(col);
}

}  // namespace fathom::formats::jinja
