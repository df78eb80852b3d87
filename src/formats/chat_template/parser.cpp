#include "formats/chat_template/parser.h"

#include <initializer_list>

#include "formats/chat_template/builtins.h"
#include "formats/chat_template/lexer.h"

namespace fathom::formats::jinja {
namespace {

constexpr int kMaxNesting = 100;

using T = Token::Type;

std::string describe(const Token& t) {
  switch (t.type) {
    case T::kText: return "template text";
    case T::kVarBegin: return "'{{'";
    case T::kVarEnd: return "'}}'";
    case T::kBlockBegin: return "'{%'";
    case T::kBlockEnd: return "'%}'";
    case T::kName: return "'" + t.text + "'";
    case T::kString: return "string literal";
    case T::kInt:
    case T::kFloat: return "number " + t.text;
    case T::kOp: return "'" + t.text + "'";
    case T::kEof: return "end of template";
  }
  return "token";
}

class Parser {
 public:
  Parser(const std::string& src, std::vector<Token> tokens) : src_(src), toks_(std::move(tokens)) {}

  Body run() {
    std::string end;
    Body body = parse_body({}, "", 0, &end);
    return body;
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == T::kOp && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == T::kName && cur().text == n; }
  [[noreturn]] void error_at(size_t offset, const std::string& what) const {
    fail(describe_position(src_, offset) + ": " + what);
  }
  [[noreturn]] void expected(const std::string& what) const {
    error_at(cur().offset, "expected " + what + ", got " + describe(cur()));
  }
  void expect_op(const char* op) {
    if (!is_op(op)) expected(std::string("'") + op + "'");
    advance();
  }
  std::string expect_name(const char* what = "a name") {
    if (cur().type != T::kName) expected(what);
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != T::kBlockEnd) expected("'%}'");
    advance();
  }

  struct Nest {
    Parser& p;
    explicit Nest(Parser& parser) : p(parser) {
      if (++p.depth_ > kMaxNesting) p.error_at(p.cur().offset, "template nested too deeply (over 100 levels)");
    }
    ~Nest() { --p.depth_; }
  };

  ExprPtr node(Expr::Kind k, size_t offset) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->offset = offset;
    return e;
  }

  // ---- statements ----
  // Parses until one of `ends` appears as a block tag; stores which in *end (tag consumed, not its '%}').
  Body parse_body(std::initializer_list<const char*> ends, const std::string& opener, size_t opener_offset,
                  std::string* end) {
    Nest nest(*this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == T::kEof) {
        if (ends.size() == 0) return body;
        std::string want;
        for (const char* e : ends) want += (want.empty() ? "'" : " or '") + std::string(e) + "'";
        error_at(t.offset, "unexpected end of template, expected " + want + " to close '" + opener + "' opened at " +
                               describe_position(src_, opener_offset));
      }
      if (t.type == T::kText) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->text = t.text;
        s->offset = t.offset;
        body.push_back(std::move(s));
        advance();
        continue;
      }
      if (t.type == T::kVarBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kOutput;
        s->offset = t.offset;
        advance();
        s->expr = parse_tuple(true);
        if (cur().type != T::kVarEnd) expected("'}}'");
        advance();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type != T::kBlockBegin) expected("template text or a tag");
      const Token& tag = peek();
      if (tag.type != T::kName) {
        advance();
        expected("a statement name");
      }
      for (const char* e : ends)
        if (tag.text == e) {
          advance();
          advance();
          *end = tag.text;
          return body;
        }
      size_t begin = t.offset;
      advance();
      body.push_back(parse_statement(begin));
    }
  }

  StmtPtr parse_statement(size_t begin) {
    const Token tag = cur();
    advance();
    auto s = std::make_unique<Stmt>();
    s->offset = begin;
    const std::string& n = tag.text;
    if (n == "if") return parse_if(std::move(s));
    if (n == "for") return parse_for(std::move(s));
    if (n == "set") return parse_set(std::move(s));
    if (n == "macro") return parse_macro(std::move(s));
    if (n == "call") return parse_call_block(std::move(s));
    if (n == "break" || n == "continue") {
      if (loop_depth_ == 0) error_at(tag.offset, "'" + n + "' outside of a loop");
      s->kind = n == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue;
      expect_block_end();
      return s;
    }
    if (n == "generation") {
      expect_block_end();
      s->kind = Stmt::Kind::kScope;
      std::string end;
      s->body = parse_body({"endgeneration"}, "generation", tag.offset, &end);
      expect_block_end();
      return s;
    }
    error_at(tag.offset, "unknown tag '" + n + "'");
  }

  StmtPtr parse_if(StmtPtr s) {
    s->kind = Stmt::Kind::kIf;
    size_t opener = s->offset;
    s->conds.push_back(parse_tuple(false));
    expect_block_end();
    while (true) {
      std::string end;
      s->bodies.push_back(parse_body({"elif", "else", "endif"}, "if", opener, &end));
      if (end == "elif") {
        s->conds.push_back(parse_tuple(false));
        expect_block_end();
      } else if (end == "else") {
        expect_block_end();
        s->bodies.push_back(parse_body({"endif"}, "if", opener, &end));
        expect_block_end();
        return s;
      } else {
        expect_block_end();
        return s;
      }
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    bool paren = is_op("(");
    if (paren) advance();
    names.push_back(expect_name("a loop variable"));
    while (is_op(",")) {
      advance();
      if (cur().type != T::kName) break;
      names.push_back(expect_name());
    }
    if (paren) expect_op(")");
    return names;
  }

  StmtPtr parse_for(StmtPtr s) {
    s->kind = Stmt::Kind::kFor;
    s->targets = parse_targets();
    if (!is_name("in")) expected("'in'");
    advance();
    s->expr = parse_tuple(false, /*no_cond=*/true);
    if (is_name("if")) {
      advance();
      s->cond = parse_expression();
    }
    if (is_name("recursive")) error_at(cur().offset, "recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    std::string end;
    s->body = parse_body({"else", "endfor"}, "for", s->offset, &end);
    --loop_depth_;
    expect_block_end();
    if (end == "else") {
      s->else_body = parse_body({"endfor"}, "for", s->offset, &end);
      expect_block_end();
    }
    return s;
  }

  StmtPtr parse_set(StmtPtr s) {
    s->kind = Stmt::Kind::kSet;
    std::string first = expect_name("a variable name");
    s->targets.push_back(first);
    if (is_op(".")) {
      advance();
      s->attr = expect_name("an attribute name");
    } else {
      while (is_op(",")) {
        advance();
        s->targets.push_back(expect_name("a variable name"));
      }
    }
    if (cur().type == T::kBlockEnd && s->targets.size() == 1 && s->attr.empty()) {
      advance();
      s->kind = Stmt::Kind::kSetBlock;
      std::string end;
      s->body = parse_body({"endset"}, "set", s->offset, &end);
      expect_block_end();
      return s;
    }
    expect_op("=");
    s->expr = parse_tuple(false);
    expect_block_end();
    return s;
  }

  void parse_params(Stmt& s) {
    expect_op("(");
    while (!is_op(")")) {
      if (!s.params.empty()) expect_op(",");
      if (is_op(")")) break;
      s.params.push_back(expect_name("a parameter name"));
      if (is_op("=")) {
        advance();
        s.defaults.push_back(parse_expression());
      } else {
        s.defaults.push_back(nullptr);
      }
    }
    advance();
  }

  StmtPtr parse_macro(StmtPtr s) {
    s->kind = Stmt::Kind::kMacro;
    s->text = expect_name("a macro name");
    parse_params(*s);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = parse_body({"endmacro"}, "macro", s->offset, &end);
    loop_depth_ = saved;
    if (cur().type == T::kName) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  StmtPtr parse_call_block(StmtPtr s) {
    s->kind = Stmt::Kind::kCallBlock;
    if (is_op("(")) parse_params(*s);
    s->expr = parse_expression();
    if (s->expr->kind != Expr::Kind::kCall) error_at(s->offset, "expected a call after 'call'");
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    s->body = parse_body({"endcall"}, "call", s->offset, &end);
    loop_depth_ = saved;
    expect_block_end();
    return s;
  }

  // ---- expressions ----
  // A tuple without parentheses where allowed (`set a, b = 1, 2`); else one expression.
  ExprPtr parse_tuple(bool allow_trailing_end, bool no_cond = false) {
    size_t off = cur().offset;
    ExprPtr first = no_cond ? parse_or() : parse_expression();
    if (!is_op(",")) return first;
    auto t = node(Expr::Kind::kTuple, off);
    t->args.push_back(std::move(first));
    while (is_op(",")) {
      advance();
      if (cur().type == T::kBlockEnd || cur().type == T::kVarEnd || is_name("if")) break;
      t->args.push_back(no_cond ? parse_or() : parse_expression());
    }
    return t;
  }

  ExprPtr parse_expression() {
    Nest nest(*this);
    size_t off = cur().offset;
    ExprPtr e = parse_or();
    while (is_name("if")) {
      advance();
      auto c = node(Expr::Kind::kCond, off);
      c->args.resize(3);
      c->args[1] = std::move(e);
      c->args[0] = parse_or();
      if (is_name("else")) {
        advance();
        c->args[2] = parse_expression();
      }
      e = std::move(c);
    }
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr l = parse_and();
    while (is_name("or")) {
      size_t off = cur().offset;
      advance();
      auto n = node(Expr::Kind::kOr, off);
      n->args.push_back(std::move(l));
      n->args.push_back(parse_and());
      l = std::move(n);
    }
    return l;
  }

  ExprPtr parse_and() {
    ExprPtr l = parse_not();
    while (is_name("and")) {
      size_t off = cur().offset;
      advance();
      auto n = node(Expr::Kind::kAnd, off);
      n->args.push_back(std::move(l));
      n->args.push_back(parse_not());
      l = std::move(n);
    }
    return l;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      Nest nest(*this);
      size_t off = cur().offset;
      advance();
      auto n = node(Expr::Kind::kUnary, off);
      n->name = "not";
      n->args.push_back(parse_not());
      return n;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    size_t off = cur().offset;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      if (cur().type == T::kOp &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" || cur().text == ">" ||
           cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().type == T::kName && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = node(Expr::Kind::kCompare, off);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr binary(const std::string& op, ExprPtr l, ExprPtr r, size_t off) {
    auto n = node(Expr::Kind::kBinary, off);
    n->name = op;
    n->args.push_back(std::move(l));
    n->args.push_back(std::move(r));
    return n;
  }

  ExprPtr parse_math1() {
    ExprPtr l = parse_concat();
    while (is_op("+") || is_op("-")) {
      std::string op = cur().text;
      size_t off = cur().offset;
      advance();
      l = binary(op, std::move(l), parse_concat(), off);
    }
    return l;
  }

  ExprPtr parse_concat() {
    ExprPtr l = parse_math2();
    while (is_op("~")) {
      size_t off = cur().offset;
      advance();
      l = binary("~", std::move(l), parse_math2(), off);
    }
    return l;
  }

  ExprPtr parse_math2() {
    ExprPtr l = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      std::string op = cur().text;
      size_t off = cur().offset;
      advance();
      l = binary(op, std::move(l), parse_pow(), off);
    }
    return l;
  }

  ExprPtr parse_pow() {
    ExprPtr l = parse_unary(true);
    while (is_op("**")) {
      size_t off = cur().offset;
      advance();
      l = binary("**", std::move(l), parse_unary(true), off);
    }
    return l;
  }

  ExprPtr parse_unary(bool with_filter) {
    Nest nest(*this);
    size_t off = cur().offset;
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      std::string op = cur().text;
      advance();
      e = node(Expr::Kind::kUnary, off);
      e->name = op;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    size_t off = t.offset;
    switch (t.type) {
      case T::kName: {
        auto e = node(Expr::Kind::kLiteral, off);
        const std::string& n = t.text;
        if (n == "true" || n == "True") e->value = Value::boolean(true);
        else if (n == "false" || n == "False") e->value = Value::boolean(false);
        else if (n == "none" || n == "None") e->value = Value::none();
        else {
          e->kind = Expr::Kind::kName;
          e->name = n;
        }
        advance();
        return e;
      }
      case T::kString: {
        std::string s;
        while (cur().type == T::kString) {  // adjacent literals concatenate
          s += cur().text;
          advance();
        }
        auto e = node(Expr::Kind::kLiteral, off);
        e->value = Value::string(std::move(s));
        return e;
      }
      case T::kInt: {
        auto e = node(Expr::Kind::kLiteral, off);
        e->value = Value::integer(t.int_value);
        advance();
        return e;
      }
      case T::kFloat: {
        auto e = node(Expr::Kind::kLiteral, off);
        e->value = Value::number(t.float_value);
        advance();
        return e;
      }
      case T::kOp:
        if (t.text == "(") {
          advance();
          if (is_op(")")) {
            advance();
            return node(Expr::Kind::kTuple, off);
          }
          ExprPtr first = parse_expression();
          if (is_op(")")) {
            advance();
            return first;
          }
          auto tup = node(Expr::Kind::kTuple, off);
          tup->args.push_back(std::move(first));
          while (is_op(",")) {
            advance();
            if (is_op(")")) break;
            tup->args.push_back(parse_expression());
          }
          expect_op(")");
          return tup;
        }
        if (t.text == "[") {
          advance();
          auto l = node(Expr::Kind::kList, off);
          while (!is_op("]")) {
            if (!l->args.empty()) {
              expect_op(",");
              if (is_op("]")) break;
            }
            l->args.push_back(parse_expression());
          }
          advance();
          return l;
        }
        if (t.text == "{") {
          advance();
          auto d = node(Expr::Kind::kDict, off);
          while (!is_op("}")) {
            if (!d->args.empty()) {
              expect_op(",");
              if (is_op("}")) break;
            }
            d->args.push_back(parse_expression());
            expect_op(":");
            d->args.push_back(parse_expression());
          }
          advance();
          return d;
        }
        break;
      default: break;
    }
    expected("an expression");
  }

  void parse_call_args(Expr& call) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) {
        expect_op(",");
        if (is_op(")")) break;
      }
      first = false;
      if (cur().type == T::kName && peek().type == T::kOp && peek().text == "=") {
        std::string key = cur().text;
        advance();
        advance();
        call.kwargs.emplace_back(key, parse_expression());
      } else {
        if (!call.kwargs.empty()) expected("a keyword argument (positional after keyword)");
        call.args.push_back(parse_expression());
      }
    }
    advance();
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      size_t off = cur().offset;
      if (is_op(".")) {
        advance();
        if (cur().type == T::kName) {
          auto a = node(Expr::Kind::kAttr, off);
          a->name = cur().text;
          a->args.push_back(std::move(e));
          advance();
          e = std::move(a);
        } else if (cur().type == T::kInt) {
          auto a = node(Expr::Kind::kItem, off);
          a->args.push_back(std::move(e));
          auto idx = node(Expr::Kind::kLiteral, off);
          idx->value = Value::integer(cur().int_value);
          a->args.push_back(std::move(idx));
          advance();
          e = std::move(a);
        } else {
          expected("an attribute name");
        }
      } else if (is_op("[")) {
        Nest nest(*this);
        advance();
        ExprPtr parts[3];
        bool slice = false;
        for (int i = 0; i < 3; ++i) {
          if (!is_op(":") && !is_op("]")) parts[i] = parse_expression();
          if (i < 2 && is_op(":")) {
            slice = true;
            advance();
          } else {
            break;
          }
        }
        expect_op("]");
        if (slice) {
          auto s = node(Expr::Kind::kSlice, off);
          s->args.push_back(std::move(e));
          for (auto& p : parts) s->args.push_back(std::move(p));
          e = std::move(s);
        } else {
          if (!parts[0]) error_at(off, "expected a subscript");
          auto s = node(Expr::Kind::kItem, off);
          s->args.push_back(std::move(e));
          s->args.push_back(std::move(parts[0]));
          e = std::move(s);
        }
      } else if (is_op("(")) {
        Nest nest(*this);
        auto c = node(Expr::Kind::kCall, off);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      size_t off = cur().offset;
      if (is_op("|")) {
        Nest nest(*this);
        advance();
        std::string name = expect_name("a filter name");
        while (is_op(".")) {  // dotted filter names are not a thing here, but report clearly
          error_at(cur().offset, "unknown filter '" + name + ".'");
        }
        if (!has_filter(name)) error_at(off, "no filter named '" + name + "'");
        auto f = node(Expr::Kind::kFilter, off);
        f->name = name;
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_call_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        Nest nest(*this);
        advance();
        auto t = node(Expr::Kind::kTest, off);
        if (is_name("not")) {
          t->negated = true;
          advance();
        }
        if (cur().type == T::kName) {
          t->name = cur().text;
          advance();
        } else if (cur().type == T::kOp && (cur().text == "==" || cur().text == "!=" || cur().text == "<" ||
                                            cur().text == "<=" || cur().text == ">" || cur().text == ">=")) {
          t->name = cur().text;
          advance();
        } else {
          expected("a test name");
        }
        if (t->name == "none" || t->name == "true" || t->name == "false") {
          // `is none`: the name token, not the literal.
        }
        if (!has_test(t->name)) error_at(off, "no test named '" + t->name + "'");
        t->args.push_back(std::move(e));
        if (is_op("(")) {
          parse_call_args(*t);
        } else if ((cur().type == T::kName || cur().type == T::kString || cur().type == T::kInt ||
                    cur().type == T::kFloat || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if") && !is_name("is") &&
                   !is_name("in") && !is_name("not")) {
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        auto c = node(Expr::Kind::kCall, off);
        c->args.push_back(std::move(e));
        parse_call_args(*c);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  const std::string& src_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Body parse_template(const std::string& source) {
  auto tokens = tokenize(source);
  return Parser(source, std::move(tokens)).run();
}

}  // namespace fathom::formats::jinja
