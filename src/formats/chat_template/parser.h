#pragma once
// The chat template parser: Jinja2 tokens -> syntax tree (ast.h). Statements: if/elif/else, for (tuple targets,
// inline `if` filter, else, break/continue), set (name, tuple, namespace attribute, block set), macro, call blocks,
// generation blocks, raw. Expressions with Jinja2's precedence: ternary, or, and, not, comparisons (chained,
// in/not in), + -, ~, * / // %, **, unary - +, then filters `|f(...)`, tests `is [not] t`, calls, `.attr`,
// `[index]` and `[a:b:c]` slices; literals incl. lists, dicts, tuples.
//
// Errors: throws jinja::TemplateError "line L:C: ..." naming what was expected (unknown tags, filters and tests
// are reported here, like Jinja2's compile-time errors). Nesting deeper than 100 levels is an error, so the tree
// and the interpreter's recursion stay bounded. Thread-safety: pure function.
#include <string>

#include "formats/chat_template/ast.h"

namespace fathom::formats::jinja {

// Parses normalised source (lexer.h normalize_source).
Body parse_template(const std::string& source);

}  // namespace fathom::formats::jinja
