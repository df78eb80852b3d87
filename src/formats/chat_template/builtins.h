#pragma once
// Chat template builtins with Jinja2/Python semantics: filters (tojson as transformers defines it, trim, upper,
// lower, capitalize, title, length/count, first, last, join, default/d, string, int, float, list, items,
// replace, safe, escape/e, indent, map, select/reject, selectattr/rejectattr, unique, sort, dictsort, reverse,
// round, abs, sum, min, max, attr, wordcount), tests (defined, undefined, none, string, mapping, iterable, sequence, number,
// integer, float, boolean, true, false, callable, odd, even, divisibleby, eq/equalto/==, ne, lt, le, gt, ge, in,
// sameas, lower, upper), attribute and item access incl. str/dict/list methods, slicing, iteration, and the
// globals raise_exception, strftime_now, range, namespace, dict.
//
// Errors: throw jinja::TemplateError with Python/Jinja2-like messages (e.g. "No first item", "'<' not supported").
// Mutating list/dict methods are refused like transformers' ImmutableSandboxedEnvironment ("access to attribute
// 'append' of 'list' object is unsafe."). Thread-safety: stateless functions.
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/chat_template/value.h"

namespace fathom::formats::jinja {

struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Positional `index` or keyword `name`; null when absent.
  const Value* get(size_t index, std::string_view name) const;
  Value get_or(size_t index, std::string_view name, Value fallback) const;
};

// Throws the error an undefined value carries ("'x' is undefined").
[[noreturn]] void undefined_error(const Value& v);

bool has_filter(std::string_view name);
bool has_test(std::string_view name);
Value apply_filter(const std::string& name, const Value& input, CallArgs& args, Interpreter& in);
bool apply_test(const std::string& name, const Value& v, CallArgs& args, Interpreter& in);

// `obj.name` (attribute first, then item, like Jinja2's getattr) and `obj[key]` (item first, then attribute).
// Missing ones are undefined values that name what was missing.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
// obj[start:stop:step] on str (by code point), list and tuple; null parts are undefined values.
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
// The items a for loop sees: list items, dict keys, string characters; undefined is empty.
List iterate(const Value& v);
// Python `item in container`.
bool contains(const Value& container, const Value& item);
// Python len(); throws for values without one.
int64_t length(const Value& v);

// The globals every render sees.
std::vector<std::pair<std::string, Value>> make_globals();

}  // namespace fathom::formats::jinja
