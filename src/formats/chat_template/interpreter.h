#pragma once
// The chat template interpreter: walks the syntax tree (ast.h) with Jinja2's semantics and scoping (a for loop
// body gets a fresh scope each iteration, `if` bodies share their parent's, macros see the template's top-level
// scope; namespace() objects are the only values that can be changed in place) and writes the output.
//
// Limits, so hostile templates fail instead of hanging or crashing: at most 1 MiB of output (and per string),
// 1,000,000 loop iterations per render, macro calls nested at most 100 deep, and 2000 levels of evaluation
// recursion overall. Errors: throws jinja::TemplateError (raise_exception's message verbatim; others prefixed
// with the line:column of the statement). Thread-safety: one Interpreter per render; the tree is shared
// read-only.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/chat_template/ast.h"
#include "formats/chat_template/builtins.h"

namespace fathom::formats::jinja {

struct Scope;
using ScopePtr = std::shared_ptr<Scope>;
struct Scope {
  ScopePtr parent;
  std::vector<std::pair<std::string, Value>> vars;
  const Value* find(const std::string& name) const;
  void set(const std::string& name, Value v);
};

inline constexpr size_t kMaxOutputBytes = size_t{1} << 20;
inline constexpr int64_t kMaxIterations = 1'000'000;
inline constexpr int kMaxCallDepth = 100;
inline constexpr int kMaxEvalDepth = 2000;

class Interpreter {
 public:
  Interpreter(const Body& program, const std::string& source);
  ~Interpreter();
  // Renders with `context` (a dict value) as the top-level variables.
  std::string render(const Value& context);
  // Calls a callable value (macro, global, method); throws for non-callables.
  Value call(const Value& callee, CallArgs& args);
  // Counts one loop iteration (or one element a filter walks); throws past kMaxIterations.
  void count_iteration();
  // A new namespace; the interpreter clears them all at the end so reference cycles do not leak.
  Value make_namespace();

 private:
  enum class Flow { kNormal, kBreak, kContinue };
  struct DepthGuard;

  Flow exec_body(const Body& body, const ScopePtr& scope, std::string& out);
  Flow exec(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_for(const Stmt& s, const ScopePtr& scope, std::string& out);
  void exec_set(const Stmt& s, const ScopePtr& scope, Value v);
  Value make_macro(const Stmt& s, ScopePtr closure);
  Value invoke_macro(const Stmt& s, const ScopePtr& closure, CallArgs& args, const Value& caller);
  Value eval(const Expr& e, const ScopePtr& scope);
  Value eval_binary(const std::string& op, const Value& a, const Value& b);
  bool eval_compare(const std::string& op, const Value& a, const Value& b);
  CallArgs eval_args(const Expr& e, const ScopePtr& scope, size_t first);
  void append(std::string& out, const std::string& s);

  const Body& program_;
  const std::string& source_;
  ScopePtr root_;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  size_t stmt_offset_ = 0;
  std::vector<Value> namespaces_;
};

}  // namespace fathom::formats::jinja
