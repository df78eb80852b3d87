#pragma once
// The chat template syntax tree: expressions and statements as the parser builds them and the interpreter walks
// them. Nodes are immutable after parsing, so one tree serves concurrent renders.
//
// Errors: none (plain data). Thread-safety: read-only after construction.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "formats/chat_template/value.h"

namespace fathom::formats::jinja {

struct Expr;
struct Stmt;
using ExprPtr = std::unique_ptr<Expr>;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Expr {
  enum class Kind {
    kLiteral,   // value
    kName,      // name
    kList,      // args
    kTuple,     // args
    kDict,      // args: key, value, key, value, ...
    kAttr,      // args[0].name
    kItem,      // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null parts omitted)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs)
    kTest,      // args[0] is [not] name(args[1..])
    kUnary,     // name ("-", "+", "not") args[0]
    kBinary,    // args[0] name args[1]: + - * / // % ** ~
    kAnd,
    kOr,
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ...
    kCond,      // args[1] if args[0] else args[2] (args[2] may be null)
  };
  Kind kind = Kind::kLiteral;
  size_t offset = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
};

struct Stmt {
  enum class Kind {
    kText,      // text
    kOutput,    // {{ expr }}
    kIf,        // conds[i] -> bodies[i]; bodies.back() is else when bodies.size() > conds.size()
    kFor,       // targets in expr [if cond] body [else else_body]
    kSet,       // targets (or ns.attr: targets={ns}, attr) = expr
    kSetBlock,  // targets[0] = rendered body
    kMacro,     // name(params = defaults) body
    kCallBlock, // expr (a call) with caller(params) = body
    kBreak,
    kContinue,
    kScope,     // body rendered inline (generation blocks)
  };
  Kind kind = Kind::kText;
  size_t offset = 0;
  std::string text;   // kText; macro name
  std::string attr;   // kSet on a namespace attribute
  ExprPtr expr;       // output, for-iterable, set value, call
  ExprPtr cond;       // for-filter
  std::vector<std::string> targets;
  std::vector<ExprPtr> conds;
  std::vector<Body> bodies;
  Body body;
  Body else_body;
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // one per param, null when none
};

}  // namespace fathom::formats::jinja
