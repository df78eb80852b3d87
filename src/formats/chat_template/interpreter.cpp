#include "formats/chat_template/interpreter.h"

#include <cmath>
#include <limits>

#include "formats/chat_template/lexer.h"

namespace fathom::formats::jinja {

const Value* Scope::find(const std::string& name) const {
  for (const Scope* s = this; s; s = s->parent.get())
    for (const auto& [k, v] : s->vars)
      if (k == name) return &v;
  return nullptr;
}

void Scope::set(const std::string& name, Value v) {
  for (auto& [k, old] : vars)
    if (k == name) {
      old = std::move(v);
      return;
    }
  vars.emplace_back(name, std::move(v));
}

struct Interpreter::DepthGuard {
  Interpreter& in;
  explicit DepthGuard(Interpreter& i) : in(i) {
    if (++in.eval_depth_ > kMaxEvalDepth) {
      --in.eval_depth_;
      fail("template recursion too deep (over " + std::to_string(kMaxEvalDepth) + " levels)");
    }
  }
  ~DepthGuard() { --in.eval_depth_; }
};

Interpreter::Interpreter(const Body& program, const std::string& source) : program_(program), source_(source) {}

Interpreter::~Interpreter() {
  // Namespaces are the only mutable values, so the only way to build a reference cycle; break them.
  for (auto& ns : namespaces_) ns.map().entries.clear();
  if (root_) root_->vars.clear();
}

Value Interpreter::make_namespace() {
  Value ns = Value::name_space();
  namespaces_.push_back(ns);
  return ns;
}

void Interpreter::count_iteration() {
  if (++iterations_ > kMaxIterations)
    fail("loop iteration limit exceeded (over " + std::to_string(kMaxIterations) + " iterations)");
}

void Interpreter::append(std::string& out, const std::string& s) {
  if (out.size() + s.size() > kMaxOutputBytes)
    fail("output exceeds the limit of " + std::to_string(kMaxOutputBytes) + " bytes");
  out += s;
}

std::string Interpreter::render(const Value& context) {
  root_ = std::make_shared<Scope>();
  for (auto& g : make_globals()) root_->vars.push_back(std::move(g));
  auto top = std::make_shared<Scope>();
  top->parent = root_;
  if (context.is_dict())
    for (const auto& [k, v] : context.map().entries)
      if (k.is_string()) top->set(k.str(), v);
  root_ = top;
  std::string out;
  try {
    exec_body(program_, root_, out);
  } catch (TemplateError& e) {
    if (!e.raised) e.message = describe_position(source_, stmt_offset_) + ": " + e.message;
    throw;
  }
  return out;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, const ScopePtr& scope, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec(*s, scope, out);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, const ScopePtr& scope, std::string& out) {
  DepthGuard guard(*this);
  stmt_offset_ = s.offset;
  switch (s.kind) {
    case Stmt::Kind::kText: append(out, s.text); break;
    case Stmt::Kind::kOutput: append(out, eval(*s.expr, scope).to_str()); break;
    case Stmt::Kind::kIf:
      for (size_t i = 0; i < s.conds.size(); ++i) {
        stmt_offset_ = s.offset;
        if (eval(*s.conds[i], scope).truthy()) return exec_body(s.bodies[i], scope, out);
      }
      if (s.bodies.size() > s.conds.size()) return exec_body(s.bodies.back(), scope, out);
      break;
    case Stmt::Kind::kFor: exec_for(s, scope, out); break;
    case Stmt::Kind::kSet: exec_set(s, scope, eval(*s.expr, scope)); break;
    case Stmt::Kind::kSetBlock: {
      std::string text;
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      exec_body(s.body, inner, text);
      scope->set(s.targets[0], Value::string(std::move(text)));
      break;
    }
    case Stmt::Kind::kMacro: scope->set(s.text, make_macro(s, root_)); break;
    case Stmt::Kind::kCallBlock: {
      const Expr& call_expr = *s.expr;
      Value callee = eval(*call_expr.args[0], scope);
      CallArgs args = eval_args(call_expr, scope, 1);
      const Stmt* block = &s;
      ScopePtr site = scope;
      args.kw.emplace_back("caller", Value::callable("caller", [this, block, site](CallArgs& a, Interpreter&) {
                             return invoke_macro(*block, site, a, Value());
                           }));
      append(out, call(callee, args).to_str());
      break;
    }
    case Stmt::Kind::kBreak: return Flow::kBreak;
    case Stmt::Kind::kContinue: return Flow::kContinue;
    case Stmt::Kind::kScope: return exec_body(s.body, scope, out);
  }
  return Flow::kNormal;
}

void Interpreter::exec_for(const Stmt& s, const ScopePtr& scope, std::string& out) {
  List all = iterate(eval(*s.expr, scope));
  auto bind = [&](Scope& frame, const Value& item) {
    if (s.targets.size() == 1) {
      frame.set(s.targets[0], item);
      return;
    }
    List parts = iterate(item);
    if (parts.size() != s.targets.size())
      fail(std::string(parts.size() > s.targets.size() ? "too many" : "not enough") + " values to unpack (expected " +
           std::to_string(s.targets.size()) + ", got " + std::to_string(parts.size()) + ")");
    for (size_t i = 0; i < parts.size(); ++i) frame.set(s.targets[i], parts[i]);
  };
  List items;
  if (s.cond) {
    for (const Value& item : all) {
      count_iteration();
      auto frame = std::make_shared<Scope>();
      frame->parent = scope;
      bind(*frame, item);
      if (eval(*s.cond, frame).truthy()) items.push_back(item);
    }
  } else {
    items = std::move(all);
  }
  if (items.empty()) {
    exec_body(s.else_body, scope, out);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    count_iteration();
    auto frame = std::make_shared<Scope>();
    frame->parent = scope;
    auto loop = std::make_shared<Dict>();
    auto put = [&](const char* k, Value v) { loop->entries.emplace_back(Value::string(k), std::move(v)); };
    put("index", Value::integer(i + 1));
    put("index0", Value::integer(i));
    put("revindex", Value::integer(n - i));
    put("revindex0", Value::integer(n - i - 1));
    put("first", Value::boolean(i == 0));
    put("last", Value::boolean(i == n - 1));
    put("length", Value::integer(n));
    put("depth", Value::integer(1));
    put("depth0", Value::integer(0));
    put("previtem", i > 0 ? items[i - 1] : Value::undefined("there is no previous item"));
    put("nextitem", i + 1 < n ? items[i + 1] : Value::undefined("there is no next item"));
    put("cycle", Value::callable("cycle", [i](CallArgs& a, Interpreter&) {
          if (a.pos.empty()) fail("no items for cycling given");
          return a.pos[static_cast<size_t>(i) % a.pos.size()];
        }));
    frame->vars.emplace_back("loop", Value::dict(loop));
    bind(*frame, items[i]);
    Flow f = exec_body(s.body, frame, out);
    if (f == Flow::kBreak) break;
  }
}

void Interpreter::exec_set(const Stmt& s, const ScopePtr& scope, Value v) {
  if (!s.attr.empty()) {
    const Value* ns = scope->find(s.targets[0]);
    if (!ns || !ns->is_namespace()) fail("cannot assign attribute on non-namespace object");
    ns->map().set(Value::string(s.attr), std::move(v));
    return;
  }
  if (s.targets.size() == 1) {
    scope->set(s.targets[0], std::move(v));
    return;
  }
  List parts = iterate(v);
  if (parts.size() != s.targets.size())
    fail(std::string(parts.size() > s.targets.size() ? "too many" : "not enough") + " values to unpack (expected " +
         std::to_string(s.targets.size()) + ", got " + std::to_string(parts.size()) + ")");
  for (size_t i = 0; i < parts.size(); ++i) scope->set(s.targets[i], parts[i]);
}

Value Interpreter::make_macro(const Stmt& s, ScopePtr closure) {
  const Stmt* m = &s;
  // The closure is the template's top-level scope, which lives as long as the render.
  Scope* raw = closure.get();
  return Value::callable(s.text, [this, m, raw](CallArgs& a, Interpreter&) {
    Value caller;
    for (auto it = a.kw.begin(); it != a.kw.end(); ++it)
      if (it->first == "caller") {
        caller = it->second;
        a.kw.erase(it);
        break;
      }
    ScopePtr parent(std::shared_ptr<Scope>(), raw);  // non-owning
    return invoke_macro(*m, parent, a, caller);
  });
}

Value Interpreter::invoke_macro(const Stmt& s, const ScopePtr& closure, CallArgs& args, const Value& caller) {
  if (call_depth_ >= kMaxCallDepth)
    fail("macro recursion too deep (over " + std::to_string(kMaxCallDepth) + " nested calls)");
  const std::string name = s.kind == Stmt::Kind::kMacro ? s.text : "caller";
  if (args.pos.size() > s.params.size())
    fail("macro '" + name + "' takes not more than " + std::to_string(s.params.size()) + " argument(s)");
  auto frame = std::make_shared<Scope>();
  frame->parent = closure;
  for (size_t i = 0; i < s.params.size(); ++i) {
    if (i < args.pos.size()) {
      frame->set(s.params[i], args.pos[i]);
      continue;
    }
    bool found = false;
    for (const auto& [k, v] : args.kw)
      if (k == s.params[i]) {
        frame->set(s.params[i], v);
        found = true;
      }
    if (!found)
      frame->set(s.params[i], s.defaults[i] ? eval(*s.defaults[i], frame)
                                            : Value::undefined("parameter '" + s.params[i] + "' was not provided"));
  }
  for (const auto& [k, v] : args.kw) {
    bool known = false;
    for (const auto& p : s.params) known |= p == k;
    if (!known) fail("macro '" + name + "' takes no keyword argument '" + k + "'");
  }
  if (!caller.is_undefined()) frame->set("caller", caller);
  ++call_depth_;
  std::string out;
  try {
    exec_body(s.body, frame, out);
  } catch (...) {
    --call_depth_;
    throw;
  }
  --call_depth_;
  return Value::string(std::move(out));
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.is_undefined()) undefined_error(callee);
  if (!callee.is_callable()) fail("'" + callee.type_name() + "' object is not callable");
  return callee.fn().fn(args, *this);
}

CallArgs Interpreter::eval_args(const Expr& e, const ScopePtr& scope, size_t first) {
  CallArgs a;
  for (size_t i = first; i < e.args.size(); ++i) a.pos.push_back(eval(*e.args[i], scope));
  for (const auto& [k, v] : e.kwargs) a.kw.emplace_back(k, eval(*v, scope));
  return a;
}

namespace {
[[noreturn]] void bad_operands(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  fail("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

void overflow_error() { fail("integer overflow (fathom's template integers are 64-bit)"); }

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
  if (seq.is_string()) {
    if (seq.str().size() * static_cast<unsigned __int128>(n) > kMaxStringBytes)
      fail("string too large (over " + std::to_string(kMaxStringBytes) + " bytes)");
    std::string out;
    out.reserve(seq.str().size() * n);
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::string(std::move(out));
  }
  if (seq.items().size() * static_cast<unsigned __int128>(n) > kMaxListItems) fail("list too large");
  List out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::list(std::move(out), seq.is_tuple());
}

double py_fmod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0 && ((m < 0) != (b < 0))) m += b;
  return m;
}
}  // namespace

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") return Value::string(a.to_str() + b.to_str());
  const bool nums = a.is_number() && b.is_number();
  const bool ints = nums && !a.is_float() && !b.is_float();
  int64_t r = 0;
  if (op == "+") {
    if (ints) {
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) overflow_error();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return Value::string(a.str() + b.str());
    if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
      List out = a.items();
      out.insert(out.end(), b.items().begin(), b.items().end());
      return Value::list(std::move(out), a.is_tuple());
    }
    bad_operands(op, a, b);
  }
  if (op == "-") {
    if (ints) {
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) overflow_error();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() - b.as_double());
    bad_operands(op, a, b);
  }
  if (op == "*") {
    if (ints) {
      if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) overflow_error();
      return Value::integer(r);
    }
    if (nums) return Value::number(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool())) return repeat(a, b.as_int());
    if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool())) return repeat(b, a.as_int());
    bad_operands(op, a, b);
  }
  if (op == "/") {
    if (!nums) bad_operands(op, a, b);
    if (b.as_double() == 0) fail("division by zero");
    return Value::number(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (!nums) {
      if (op == "%" && a.is_string()) fail("printf-style string formatting (%) is not supported in chat templates");
      bad_operands(op, a, b);
    }
    if (b.as_double() == 0) fail(op == "//" ? "integer division or modulo by zero" : "modulo by zero");
    if (ints) {
      int64_t x = a.as_int(), y = b.as_int();
      if (x == std::numeric_limits<int64_t>::min() && y == -1) fail("integer overflow");
      int64_t q = x / y, m = x % y;
      if (m != 0 && ((m < 0) != (y < 0))) {
        --q;
        m += y;
      }
      return Value::integer(op == "//" ? q : m);
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "%") return Value::number(py_fmod(x, y));
    return Value::number(std::floor(x / y));
  }
  if (op == "**") {
    if (!nums) bad_operands(op, a, b);
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), e = b.as_int(), acc = 1;
      while (e > 0) {
        int64_t t;
        if (e & 1) {
          if (__builtin_mul_overflow(acc, base, &t)) overflow_error();
          acc = t;
        }
        e >>= 1;
        if (e > 0) {
          if (__builtin_mul_overflow(base, base, &t)) overflow_error();
          base = t;
        }
      }
      return Value::integer(acc);
    }
    if (a.as_double() == 0 && b.as_double() < 0) fail("0.0 cannot be raised to a negative power");
    return Value::number(std::pow(a.as_double(), b.as_double()));
  }
  fail("unknown operator " + op);
}

bool Interpreter::eval_compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equals(a, b);
  if (op == "!=") return !equals(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  int c = compare(a, b);
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

Value Interpreter::eval(const Expr& e, const ScopePtr& scope) {
  DepthGuard guard(*this);
  switch (e.kind) {
    case Expr::Kind::kLiteral: return e.value;
    case Expr::Kind::kName: {
      const Value* v = scope->find(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      List items;
      for (const auto& a : e.args) items.push_back(eval(*a, scope));
      return Value::list(std::move(items), e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      Value d = Value::dict();
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = eval(*e.args[i], scope);
        if (k.is_list() && !k.is_tuple()) fail("unhashable type: 'list'");
        if (k.is_dict()) fail("unhashable type: 'dict'");
        d.map().set(k, eval(*e.args[i + 1], scope));
      }
      return d;
    }
    case Expr::Kind::kAttr: return get_attr(eval(*e.args[0], scope), e.name);
    case Expr::Kind::kItem: return get_item(eval(*e.args[0], scope), eval(*e.args[1], scope));
    case Expr::Kind::kSlice: {
      Value obj = eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i)
        if (e.args[i + 1]) parts[i] = eval(*e.args[i + 1], scope);
      return slice(obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: {
      Value callee = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, scope, 1);
      return call(callee, args);
    }
    case Expr::Kind::kFilter: {
      Value input = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, scope, 1);
      return apply_filter(e.name, input, args, *this);
    }
    case Expr::Kind::kTest: {
      Value v = eval(*e.args[0], scope);
      CallArgs args = eval_args(e, scope, 1);
      return Value::boolean(apply_test(e.name, v, args, *this) != e.negated);
    }
    case Expr::Kind::kUnary: {
      Value v = eval(*e.args[0], scope);
      if (e.name == "not") return Value::boolean(!v.truthy());
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number()) fail("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
      if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
      if (v.is_float()) return Value::number(-v.as_double());
      if (v.as_int() == std::numeric_limits<int64_t>::min()) fail("integer overflow");
      return Value::integer(-v.as_int());
    }
    case Expr::Kind::kBinary: {
      Value a = eval(*e.args[0], scope);
      Value b = eval(*e.args[1], scope);
      return eval_binary(e.name, a, b);
    }
    case Expr::Kind::kAnd: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? eval(*e.args[1], scope) : a;
    }
    case Expr::Kind::kOr: {
      Value a = eval(*e.args[0], scope);
      return a.truthy() ? a : eval(*e.args[1], scope);
    }
    case Expr::Kind::kCompare: {
      Value left = eval(*e.args[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = eval(*e.args[i + 1], scope);
        if (!eval_compare(e.ops[i], left, right)) return Value::boolean(false);
        left = std::move(right);
      }
      return Value::boolean(true);
    }
    case Expr::Kind::kCond: {
      if (eval(*e.args[0], scope).truthy()) return eval(*e.args[1], scope);
      if (e.args[2]) return eval(*e.args[2], scope);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

}  // namespace fathom::formats::jinja
