#pragma once
// Runtime values of the chat template interpreter, with Python's semantics as Jinja2 exposes them:
// undefined (falsy, renders empty), none, bool, int (64-bit), float, str (UTF-8), list/tuple, dict (insertion
// ordered, like Python's dict), namespace (mutable attributes) and callables (macros, globals, bound methods).
// Lists, dicts and namespaces are shared by reference, like Python objects.
//
// Errors: operations that Python/Jinja2 would reject throw TemplateError (internal to the interpreter; the
// public API in chat_template.h turns it into a Result). Thread-safety: values are not synchronised; each render
// builds its own, so concurrent renders never share a mutable value.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace fathom::formats::jinja {

// A runtime error raised while rendering (or parsing); caught at the public API.
struct TemplateError {
  std::string message;
  bool raised = false;  // from raise_exception(): the message is the template author's, verbatim
};
[[noreturn]] void fail(std::string message);

// The largest string any operation may build, and the output cap.
inline constexpr size_t kMaxStringBytes = size_t{1} << 20;
// The largest list any operation may build (range() is capped at 100000 like Jinja2's sandbox).
inline constexpr size_t kMaxListItems = size_t{1} << 20;

class Value;
struct Dict;
struct CallArgs;
class Interpreter;

using List = std::vector<Value>;

// A callable: macro, global function or bound method.
struct Callable {
  std::string name;
  std::function<Value(CallArgs&, Interpreter&)> fn;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace, kCallable };

  Value() = default;  // undefined
  static Value undefined(std::string hint = {});
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double f);
  static Value string(std::string s);
  static Value list(List items = {}, bool tuple = false);
  static Value dict();  // empty dict
  static Value dict(std::shared_ptr<Dict> d);
  static Value name_space();
  static Value callable(std::string name, std::function<Value(CallArgs&, Interpreter&)> fn);
  // JSON -> value (objects keep their order: pass ordered_json for Python's insertion order). Throws past
  // 256 levels of nesting.
  static Value from_json(const nlohmann::ordered_json& j);
  static Value from_json(const nlohmann::json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }  // not bool
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return kind_ == Kind::kInt || kind_ == Kind::kFloat || kind_ == Kind::kBool; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_tuple() const { return kind_ == Kind::kList && tuple_; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_mapping() const { return kind_ == Kind::kDict || kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }  // int or bool
  double as_double() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& str() const { return *s_; }
  List& items() const { return *list_; }
  Dict& map() const { return *dict_; }
  const Callable& fn() const { return *fn_; }
  const std::string& hint() const;  // for undefined: what was missing

  bool truthy() const;
  // str(x) as Jinja2 renders it: undefined -> "", none -> "None", True -> "True", 1.0 -> "1.0", lists as repr.
  std::string to_str() const;
  // repr(x), Python style ('a', [1, 'b'], {'k': None}).
  std::string repr() const;
  // Python's json.dumps(x, ensure_ascii=False, indent, separators, sort_keys). Undefined/callables throw.
  std::string to_json(int indent, bool has_indent, const std::string& item_sep, const std::string& key_sep,
                      bool sort_keys) const;
  std::string type_name() const;  // Python's type name: 'str', 'int', 'dict', ...
  bool same_object(const Value& other) const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  bool tuple_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;  // string, or the undefined hint
  std::shared_ptr<List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Callable> fn_;
};

// An insertion-ordered mapping (Python dict). Small in practice; lookups are linear.
struct Dict {
  std::vector<std::pair<Value, Value>> entries;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(const Value& key, Value value);
};

// Python equality (1 == 1.0 == True, lists/dicts element-wise) and ordering (throws on incompatible types).
bool equals(const Value& a, const Value& b);
int compare(const Value& a, const Value& b);  // <0, 0, >0

// Python's repr of a float ("1.0", "0.5", "1e-05", "inf").
std::string float_repr(double f);
// Python's repr of a str ('it\'s' -> "it's").
std::string string_repr(std::string_view s);

// UTF-8 helpers: code points <-> UTF-8.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t c);

}  // namespace fathom::formats::jinja
