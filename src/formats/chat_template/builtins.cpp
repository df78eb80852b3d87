#include "formats/chat_template/builtins.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>

#include <utf8proc.h>

#include "formats/chat_template/interpreter.h"

namespace fathom::formats::jinja {

const Value* CallArgs::get(size_t index, std::string_view name) const {
  if (index < pos.size()) return &pos[index];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

Value CallArgs::get_or(size_t index, std::string_view name, Value fallback) const {
  const Value* v = get(index, name);
  return v ? *v : std::move(fallback);
}

void undefined_error(const Value& v) { fail(v.hint().empty() ? "value is undefined" : v.hint()); }

namespace {

// ---- string helpers (Python str semantics over code points) ----
bool py_space(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
char32_t upper_cp(char32_t c) { return static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c))); }
char32_t lower_cp(char32_t c) { return static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))); }
bool cased(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}
bool alpha(char32_t c) {
  auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}
bool digit(char32_t c) { return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND; }

std::string map_cps(const std::string& s, char32_t (*f)(char32_t)) {
  std::u32string u = utf8_decode(s);
  for (auto& c : u) c = f(c);
  return utf8_encode(u);
}

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string u = utf8_decode(s);
  std::u32string set;
  bool ws = chars.is_undefined() || chars.is_none();
  if (!ws) {
    if (!chars.is_string()) fail("strip arg must be None or str");
    set = utf8_decode(chars.str());
  }
  auto strip_it = [&](char32_t c) { return ws ? py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && strip_it(u[b])) ++b;
  if (right)
    while (e > b && strip_it(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

List py_split(const std::string& s, const Value& sep, int64_t maxsplit) {
  List out;
  if (sep.is_undefined() || sep.is_none()) {
    std::u32string u = utf8_decode(s);
    size_t i = 0;
    while (i < u.size()) {
      while (i < u.size() && py_space(u[i])) ++i;
      if (i >= u.size()) break;
      if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) {
        size_t e = u.size();
        while (e > i && py_space(u[e - 1])) --e;
        out.push_back(Value::string(utf8_encode(u.substr(i, e - i))));
        break;
      }
      size_t j = i;
      while (j < u.size() && !py_space(u[j])) ++j;
      out.push_back(Value::string(utf8_encode(u.substr(i, j - i))));
      i = j;
    }
    return out;
  }
  if (!sep.is_string()) fail("must be str or None, not " + sep.type_name());
  const std::string& d = sep.str();
  if (d.empty()) fail("empty separator");
  size_t start = 0;
  while (true) {
    if (maxsplit >= 0 && static_cast<int64_t>(out.size()) >= maxsplit) break;
    size_t p = s.find(d, start);
    if (p == std::string::npos) break;
    out.push_back(Value::string(s.substr(start, p - start)));
    start = p + d.size();
  }
  out.push_back(Value::string(s.substr(start)));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& neu, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string u = utf8_decode(s);
    int64_t n = 0;
    for (size_t i = 0; i <= u.size(); ++i) {
      if (count < 0 || n < count) {
        out += neu;
        ++n;
      }
      if (i < u.size()) utf8_append(out, u[i]);
      if (out.size() > kMaxStringBytes) fail("string too large");
    }
    return out;
  }
  size_t start = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t p = s.find(old, start);
    if (p == std::string::npos) break;
    out.append(s, start, p - start);
    out += neu;
    if (out.size() > kMaxStringBytes) fail("string too large");
    start = p + old.size();
    ++n;
  }
  out.append(s, start, std::string::npos);
  return out;
}

std::string py_title(const std::string& s) {
  std::u32string u = utf8_decode(s);
  bool prev_cased = false;
  for (auto& c : u) {
    bool is_cased = cased(c);
    c = prev_cased ? lower_cp(c) : upper_cp(c);
    prev_cased = is_cased;
  }
  return utf8_encode(u);
}

std::string py_capitalize(const std::string& s) {
  std::u32string u = utf8_decode(s);
  for (size_t i = 0; i < u.size(); ++i) u[i] = i == 0 ? upper_cp(u[i]) : lower_cp(u[i]);
  return utf8_encode(u);
}

// Jinja2's title filter: words start after '-', whitespace, '(', '{', '[' or '<'.
std::string jinja_title(const std::string& s) {
  std::u32string u = utf8_decode(s);
  bool start = true;
  for (auto& c : u) {
    bool delim = c == '-' || py_space(c) || c == '(' || c == '{' || c == '[' || c == '<';
    if (delim) {
      start = true;
      continue;
    }
    c = start ? upper_cp(c) : lower_cp(c);
    start = false;
  }
  return utf8_encode(u);
}

int64_t to_index(const Value& v, const char* what) {
  if (v.is_int() || v.is_bool()) return v.as_int();
  fail(std::string(what) + " must be an integer, not " + v.type_name());
}

int64_t int_arg(const CallArgs& a, size_t i, std::string_view name, int64_t dflt) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none() || v->is_undefined()) return dflt;
  return to_index(*v, std::string(name).c_str());
}

bool bool_arg(const CallArgs& a, size_t i, std::string_view name, bool dflt) {
  const Value* v = a.get(i, name);
  return v ? v->truthy() : dflt;
}

std::string str_arg(const CallArgs& a, size_t i, std::string_view name, const char* method) {
  const Value* v = a.get(i, name);
  if (!v) fail(std::string(method) + "() missing required argument '" + std::string(name) + "'");
  if (!v->is_string()) fail(std::string(method) + "() argument must be str, not " + v->type_name());
  return v->str();
}

Value unsafe_method(const std::string& type, const std::string& name) {
  return Value::callable(name, [type, name](CallArgs&, Interpreter&) -> Value {
    fail("access to attribute '" + name + "' of '" + type + "' object is unsafe.");
  });
}

bool affix_match(const std::string& s, const Value& affix, bool prefix, const char* method) {
  auto one = [&](const Value& a) {
    if (!a.is_string()) fail(std::string(method) + " first arg must be str or a tuple of str, not " + a.type_name());
    const std::string& x = a.str();
    if (x.size() > s.size()) return false;
    return prefix ? s.compare(0, x.size(), x) == 0 : s.compare(s.size() - x.size(), x.size(), x) == 0;
  };
  if (affix.is_list()) {
    for (const auto& a : affix.items())
      if (one(a)) return true;
    return false;
  }
  return one(affix);
}

Value string_method(const Value& self, const std::string& name) {
  static const char* const kNames[] = {"strip", "lstrip", "rstrip", "split", "startswith", "endswith", "upper",
                                       "lower", "title", "capitalize", "replace", "find", "rfind", "count", "join",
                                       "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower",
                                       "splitlines", "swapcase"};
  bool known = false;
  for (const char* n : kNames) known |= name == n;
  if (!known) return Value::undefined("'str object' has no attribute '" + name + "'");
  return Value::callable(name, [self, name](CallArgs& a, Interpreter& in) -> Value {
    const std::string& s = self.str();
    if (name == "strip" || name == "lstrip" || name == "rstrip")
      return Value::string(py_strip(s, a.get_or(0, "chars", Value()), name != "rstrip", name != "lstrip"));
    if (name == "split") return Value::list(py_split(s, a.get_or(0, "sep", Value()), int_arg(a, 1, "maxsplit", -1)));
    if (name == "startswith" || name == "endswith") {
      const Value* x = a.get(0, "prefix");
      if (!x) fail(name + "() takes at least 1 argument (0 given)");
      return Value::boolean(affix_match(s, *x, name == "startswith", name.c_str()));
    }
    if (name == "upper") return Value::string(map_cps(s, upper_cp));
    if (name == "lower") return Value::string(map_cps(s, lower_cp));
    if (name == "swapcase")
      return Value::string(map_cps(s, [](char32_t c) { return upper_cp(c) == c ? lower_cp(c) : upper_cp(c); }));
    if (name == "title") return Value::string(py_title(s));
    if (name == "capitalize") return Value::string(py_capitalize(s));
    if (name == "replace")
      return Value::string(py_replace(s, str_arg(a, 0, "old", "replace"), str_arg(a, 1, "new", "replace"),
                                      int_arg(a, 2, "count", -1)));
    if (name == "find" || name == "rfind" || name == "count") {
      std::string sub = str_arg(a, 0, "sub", name.c_str());
      if (name == "count") {
        if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_decode(s).size()) + 1);
        int64_t n = 0;
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
        return Value::integer(n);
      }
      size_t p = name == "find" ? s.find(sub) : s.rfind(sub);
      if (p == std::string::npos) return Value::integer(-1);
      return Value::integer(static_cast<int64_t>(utf8_decode(s.substr(0, p)).size()));
    }
    if (name == "join") {
      const Value* x = a.get(0, "iterable");
      if (!x) fail("join() takes exactly one argument (0 given)");
      std::string out;
      bool first = true;
      for (const Value& item : iterate(*x)) {
        in.count_iteration();
        if (!item.is_string()) fail("sequence item: expected str instance, " + item.type_name() + " found");
        if (!first) out += s;
        first = false;
        out += item.str();
        if (out.size() > kMaxStringBytes) fail("string too large");
      }
      return Value::string(std::move(out));
    }
    if (name == "splitlines") {
      List out;
      size_t start = 0;
      for (size_t i = 0; i < s.size(); ++i)
        if (s[i] == '\n' || s[i] == '\r') {
          out.push_back(Value::string(s.substr(start, i - start)));
          if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
          start = i + 1;
        }
      if (start < s.size()) out.push_back(Value::string(s.substr(start)));
      return Value::list(std::move(out));
    }
    std::u32string u = utf8_decode(s);
    if (u.empty()) return Value::boolean(false);
    auto all = [&](auto pred) { return std::all_of(u.begin(), u.end(), pred); };
    if (name == "isdigit") return Value::boolean(all(digit));
    if (name == "isalpha") return Value::boolean(all(alpha));
    if (name == "isalnum") return Value::boolean(all([](char32_t c) { return alpha(c) || digit(c); }));
    if (name == "isspace") return Value::boolean(all(py_space));
    bool any_cased = std::any_of(u.begin(), u.end(), cased);
    if (name == "isupper") return Value::boolean(any_cased && all([](char32_t c) { return !cased(c) || upper_cp(c) == c; }));
    return Value::boolean(any_cased && all([](char32_t c) { return !cased(c) || lower_cp(c) == c; }));
  });
}

Value dict_method(const Value& self, const std::string& name) {
  if (name == "items" || name == "keys" || name == "values") {
    return Value::callable(name, [self, name](CallArgs&, Interpreter&) {
      List out;
      for (const auto& [k, v] : self.map().entries) {
        if (name == "items") out.push_back(Value::list({k, v}, true));
        else out.push_back(name == "keys" ? k : v);
      }
      return Value::list(std::move(out));
    });
  }
  if (name == "get") {
    return Value::callable(name, [self](CallArgs& a, Interpreter&) {
      const Value* k = a.get(0, "key");
      if (!k) fail("get expected at least 1 argument, got 0");
      const Value* v = self.map().find(*k);
      return v ? *v : a.get_or(1, "default", Value::none());
    });
  }
  if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear")
    return unsafe_method("dict", name);
  return Value();
}

Value list_method(const Value& self, const std::string& name) {
  if (name == "index" || name == "count") {
    return Value::callable(name, [self, name](CallArgs& a, Interpreter&) {
      const Value* x = a.get(0, "value");
      if (!x) fail(name + "() takes exactly one argument (0 given)");
      int64_t n = 0;
      const auto& items = self.items();
      for (size_t i = 0; i < items.size(); ++i)
        if (equals(items[i], *x)) {
          if (name == "index") return Value::integer(static_cast<int64_t>(i));
          ++n;
        }
      if (name == "index") fail(x->repr() + " is not in list");
      return Value::integer(n);
    });
  }
  if (!self.is_tuple() && (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
                           name == "remove" || name == "reverse" || name == "sort" || name == "clear"))
    return unsafe_method("list", name);
  return Value();
}

}  // namespace

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kUndefined: undefined_error(obj);
    case Value::Kind::kDict: {
      Value m = dict_method(obj, name);
      if (!m.is_undefined()) return m;
      if (const Value* v = obj.map().find(name)) return *v;
      return Value::undefined("'dict object' has no attribute '" + name + "'");
    }
    case Value::Kind::kNamespace: {
      if (const Value* v = obj.map().find(name)) return *v;
      return Value::undefined("'Namespace' object has no attribute '" + name + "'");
    }
    case Value::Kind::kString: return string_method(obj, name);
    case Value::Kind::kList: {
      Value m = list_method(obj, name);
      if (!m.is_undefined()) return m;
      return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
    }
    default: return Value::undefined("'" + obj.type_name() + " object' has no attribute '" + name + "'");
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.is_dict()) {
    if (const Value* v = obj.map().find(key)) return *v;
    if (key.is_string()) {
      Value m = dict_method(obj, key.str());
      if (!m.is_undefined()) return m;
    }
    return Value::undefined("'dict object' has no attribute '" + key.to_str() + "'");
  }
  if (key.is_string()) return get_attr(obj, key.str());
  if ((obj.is_list() || obj.is_string()) && (key.is_int() || key.is_bool())) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i < 0 || i >= n)
        return Value::undefined("'" + obj.type_name() + " object' has no element " + std::to_string(key.as_int()));
      return obj.items()[static_cast<size_t>(i)];
    }
    std::u32string u = utf8_decode(obj.str());
    int64_t n = static_cast<int64_t>(u.size());
    if (i < 0) i += n;
    if (i < 0 || i >= n) return Value::undefined("'str object' has no element " + std::to_string(key.as_int()));
    std::string out;
    utf8_append(out, u[static_cast<size_t>(i)]);
    return Value::string(std::move(out));
  }
  return Value::undefined("'" + obj.type_name() + " object' has no element " + key.repr());
}

Value slice(const Value& obj, const Value& start_v, const Value& stop_v, const Value& step_v) {
  if (obj.is_undefined()) undefined_error(obj);
  if (!obj.is_list() && !obj.is_string()) fail("'" + obj.type_name() + "' object is not subscriptable");
  auto opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_undefined() || v.is_none()) return std::nullopt;
    return to_index(v, what);
  };
  auto start = opt(start_v, "slice indices"), stop = opt(stop_v, "slice indices");
  int64_t step = opt(step_v, "slice indices").value_or(1);
  if (step == 0) fail("slice step cannot be zero");
  std::u32string u;
  if (obj.is_string()) u = utf8_decode(obj.str());
  const int64_t n = obj.is_string() ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.items().size());
  auto norm = [&](std::optional<int64_t> v, int64_t dflt, int64_t lo, int64_t hi) {
    if (!v) return dflt;
    int64_t x = *v < 0 ? *v + n : *v;
    return std::clamp(x, lo, hi);
  };
  int64_t b, e;
  if (step > 0) {
    b = norm(start, 0, 0, n);
    e = norm(stop, n, 0, n);
  } else {
    b = norm(start, n - 1, -1, n - 1);
    e = norm(stop, -1, -1, n - 1);
  }
  std::vector<int64_t> idx;
  for (int64_t i = b; step > 0 ? i < e : i > e; i += step) idx.push_back(i);
  if (obj.is_string()) {
    std::u32string out;
    for (int64_t i : idx) out += u[static_cast<size_t>(i)];
    return Value::string(utf8_encode(out));
  }
  List out;
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return Value::list(std::move(out), obj.is_tuple());
}

List iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return {};
    case Value::Kind::kList: return v.items();
    case Value::Kind::kDict: {
      List keys;
      for (const auto& e : v.map().entries) keys.push_back(e.first);
      return keys;
    }
    case Value::Kind::kString: {
      List out;
      for (char32_t c : utf8_decode(v.str())) {
        std::string s;
        utf8_append(s, c);
        out.push_back(Value::string(std::move(s)));
      }
      return out;
    }
    default: fail("'" + v.type_name() + "' object is not iterable");
  }
}

bool contains(const Value& container, const Value& item) {
  switch (container.kind()) {
    case Value::Kind::kUndefined: return false;
    case Value::Kind::kString:
      if (!item.is_string()) fail("'in <string>' requires string as left operand, not " + item.type_name());
      return container.str().find(item.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const auto& x : container.items())
        if (equals(x, item)) return true;
      return false;
    case Value::Kind::kDict: return container.map().find(item) != nullptr;
    default: fail("argument of type '" + container.type_name() + "' is not iterable");
  }
}

int64_t length(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined: return 0;
    case Value::Kind::kString: return static_cast<int64_t>(utf8_decode(v.str()).size());
    case Value::Kind::kList: return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict: return static_cast<int64_t>(v.map().entries.size());
    default: fail("object of type '" + v.type_name() + "' has no len()");
  }
}

// ---- tests ----
namespace {
using TestFn = bool (*)(const Value&, CallArgs&, Interpreter&);

const Value& test_arg(const CallArgs& a, const char* test) {
  const Value* v = a.get(0, "other");
  if (!v) fail(std::string("test '") + test + "' needs an argument");
  return *v;
}

const std::map<std::string, TestFn, std::less<>>& tests() {
  static const std::map<std::string, TestFn, std::less<>> t = {
      {"defined", [](const Value& v, CallArgs&, Interpreter&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, CallArgs&, Interpreter&) { return v.is_undefined(); }},
      {"none", [](const Value& v, CallArgs&, Interpreter&) { return v.is_none(); }},
      {"string", [](const Value& v, CallArgs&, Interpreter&) { return v.is_string(); }},
      {"mapping", [](const Value& v, CallArgs&, Interpreter&) { return v.is_dict(); }},
      {"iterable",
       [](const Value& v, CallArgs&, Interpreter&) {
         return v.is_undefined() || v.is_list() || v.is_dict() || v.is_string();
       }},
      {"sequence",  // Jinja2: has len() and __getitem__, which Undefined has too
       [](const Value& v, CallArgs&, Interpreter&) {
         return v.is_undefined() || v.is_list() || v.is_dict() || v.is_string();
       }},
      {"number", [](const Value& v, CallArgs&, Interpreter&) { return v.is_number(); }},
      {"integer", [](const Value& v, CallArgs&, Interpreter&) { return v.is_int(); }},
      {"float", [](const Value& v, CallArgs&, Interpreter&) { return v.is_float(); }},
      {"boolean", [](const Value& v, CallArgs&, Interpreter&) { return v.is_bool(); }},
      {"true", [](const Value& v, CallArgs&, Interpreter&) { return v.is_bool() && v.as_bool(); }},
      {"false", [](const Value& v, CallArgs&, Interpreter&) { return v.is_bool() && !v.as_bool(); }},
      {"callable", [](const Value& v, CallArgs&, Interpreter&) { return v.is_callable(); }},
      {"odd",
       [](const Value& v, CallArgs&, Interpreter&) { return (to_index(v, "odd") % 2 + 2) % 2 == 1; }},
      {"even", [](const Value& v, CallArgs&, Interpreter&) { return to_index(v, "even") % 2 == 0; }},
      {"divisibleby",
       [](const Value& v, CallArgs& a, Interpreter&) {
         int64_t d = to_index(test_arg(a, "divisibleby"), "divisor");
         if (d == 0) fail("integer division or modulo by zero");
         return to_index(v, "divisibleby") % d == 0;
       }},
      {"eq", [](const Value& v, CallArgs& a, Interpreter&) { return equals(v, test_arg(a, "eq")); }},
      {"ne", [](const Value& v, CallArgs& a, Interpreter&) { return !equals(v, test_arg(a, "ne")); }},
      {"lt", [](const Value& v, CallArgs& a, Interpreter&) { return compare(v, test_arg(a, "lt")) < 0; }},
      {"le", [](const Value& v, CallArgs& a, Interpreter&) { return compare(v, test_arg(a, "le")) <= 0; }},
      {"gt", [](const Value& v, CallArgs& a, Interpreter&) { return compare(v, test_arg(a, "gt")) > 0; }},
      {"ge", [](const Value& v, CallArgs& a, Interpreter&) { return compare(v, test_arg(a, "ge")) >= 0; }},
      {"in", [](const Value& v, CallArgs& a, Interpreter&) { return contains(test_arg(a, "in"), v); }},
      {"sameas", [](const Value& v, CallArgs& a, Interpreter&) { return v.same_object(test_arg(a, "sameas")); }},
      {"lower",
       [](const Value& v, CallArgs&, Interpreter&) { return v.is_string() && map_cps(v.str(), lower_cp) == v.str(); }},
      {"upper",
       [](const Value& v, CallArgs&, Interpreter&) { return v.is_string() && map_cps(v.str(), upper_cp) == v.str(); }},
  };
  return t;
}

std::string test_alias(std::string_view name) {
  if (name == "equalto" || name == "==") return "eq";
  if (name == "!=") return "ne";
  if (name == "lessthan" || name == "<") return "lt";
  if (name == "<=") return "le";
  if (name == "greaterthan" || name == ">") return "gt";
  if (name == ">=") return "ge";
  return std::string(name);
}
}  // namespace

bool has_test(std::string_view name) { return tests().count(test_alias(name)) > 0; }

bool apply_test(const std::string& name, const Value& v, CallArgs& args, Interpreter& in) {
  auto it = tests().find(test_alias(name));
  if (it == tests().end()) fail("no test named '" + name + "'");
  return it->second(v, args, in);
}

// ---- filters ----
namespace {
using FilterFn = Value (*)(const Value&, CallArgs&, Interpreter&);

// Dotted attribute path as selectattr/map/sort use it ("a.b", "items.0").
Value lookup_path(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool numeric = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = numeric ? get_item(cur, Value::integer(std::stoll(part))) : get_item(cur, Value::string(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string attribute_arg(const CallArgs& a, size_t i) {
  const Value* v = a.get(i, "attribute");
  if (!v || v->is_none() || v->is_undefined()) return {};
  return v->to_str();
}

Value sort_key(const Value& v, const std::string& attribute, bool case_sensitive) {
  Value k = attribute.empty() ? v : lookup_path(v, attribute);
  if (!case_sensitive && k.is_string()) return Value::string(map_cps(k.str(), lower_cp));
  return k;
}

std::string ascii_json(const std::string& s) {
  std::string out;
  for (char32_t c : utf8_decode(s)) {
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    auto esc = [&](unsigned u) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    };
    if (c >= 0x10000) {
      unsigned v = static_cast<unsigned>(c) - 0x10000;
      esc(0xD800 + (v >> 10));
      esc(0xDC00 + (v & 0x3FF));
    } else {
      esc(static_cast<unsigned>(c));
    }
  }
  return out;
}

Value filter_tojson(const Value& v, CallArgs& a, Interpreter&) {
  bool ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
  const Value* ind = a.get(1, "indent");
  bool has_indent = ind && !ind->is_none() && !ind->is_undefined();
  int indent = 0;
  if (has_indent) {
    int64_t i = to_index(*ind, "indent");
    indent = static_cast<int>(std::clamp<int64_t>(i, 0, 64));
  }
  std::string item_sep = has_indent ? "," : ", ", key_sep = ": ";
  const Value* seps = a.get(2, "separators");
  if (seps && seps->is_list()) {
    if (seps->items().size() != 2 || !seps->items()[0].is_string() || !seps->items()[1].is_string())
      fail("tojson: separators must be a pair of strings");
    item_sep = seps->items()[0].str();
    key_sep = seps->items()[1].str();
  }
  std::string out = v.to_json(indent, has_indent, item_sep, key_sep, bool_arg(a, 3, "sort_keys", false));
  return Value::string(ensure_ascii ? ascii_json(out) : std::move(out));
}

Value filter_indent(const Value& v, CallArgs& a, Interpreter&) {
  const Value* w = a.get(0, "width");
  std::string ind = w && w->is_string() ? w->str() : std::string(static_cast<size_t>(std::clamp<int64_t>(int_arg(a, 0, "width", 4), 0, 256)), ' ');
  bool first = bool_arg(a, 1, "first", false), blank = bool_arg(a, 2, "blank", false);
  std::string s = v.to_str() + "\n";
  List lines = py_split(s, Value::string("\n"), -1);
  lines.pop_back();  // splitlines() drops the piece after the final newline
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i].str();
    if (i > 0) {
      out += "\n";
      if (blank || !line.empty()) out += ind;
    }
    out += line;
    if (out.size() > kMaxStringBytes) fail("string too large");
  }
  if (first) out = ind + out;
  return Value::string(std::move(out));
}

Value select_impl(const Value& v, CallArgs& a, Interpreter& in, bool attr, bool select) {
  size_t next = 0;
  std::string attribute;
  if (attr) {
    const Value* at = a.get(0, "attribute");
    if (!at) fail("selectattr/rejectattr need an attribute name");
    attribute = at->to_str();
    next = 1;
  }
  std::string test;
  if (next < a.pos.size()) test = a.pos[next].to_str();
  CallArgs test_args;
  for (size_t i = next + 1; i < a.pos.size(); ++i) test_args.pos.push_back(a.pos[i]);
  if (!test.empty() && !has_test(test)) fail("no test named '" + test + "'");
  List out;
  for (const Value& item : iterate(v)) {
    in.count_iteration();
    Value x = attr ? lookup_path(item, attribute) : item;
    bool ok = test.empty() ? x.truthy() : apply_test(test, x, test_args, in);
    if (ok == select) out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value filter_map(const Value& v, CallArgs& a, Interpreter& in) {
  std::string attribute = a.pos.empty() ? attribute_arg(a, 99) : std::string();
  List out;
  if (!attribute.empty()) {
    const Value* dflt = a.get(99, "default");
    for (const Value& item : iterate(v)) {
      in.count_iteration();
      Value x = lookup_path(item, attribute);
      out.push_back(x.is_undefined() && dflt ? *dflt : x);
    }
    return Value::list(std::move(out));
  }
  if (a.pos.empty()) fail("map requires a filter name or attribute=");
  std::string filter = a.pos[0].to_str();
  if (!has_filter(filter)) fail("no filter named '" + filter + "'");
  CallArgs rest;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (const Value& item : iterate(v)) {
    in.count_iteration();
    CallArgs copy = rest;
    out.push_back(apply_filter(filter, item, copy, in));
  }
  return Value::list(std::move(out));
}

Value filter_int(const Value& v, CallArgs& a, Interpreter&) {
  Value dflt = a.get_or(0, "default", Value::integer(0));
  int64_t base = int_arg(a, 1, "base", 10);
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    if (!std::isfinite(v.as_double()) || std::abs(v.as_double()) > 9.2e18) return dflt;
    return Value::integer(static_cast<int64_t>(v.as_double()));
  }
  if (v.is_string()) {
    std::string s = py_strip(v.str(), Value(), true, true);
    std::string digits;
    for (char c : s)
      if (c != '_') digits += c;
    if (!digits.empty() && base >= 2 && base <= 36) {
      errno = 0;
      char* end = nullptr;
      long long r = std::strtoll(digits.c_str(), &end, static_cast<int>(base));
      if (errno == 0 && end && *end == 0) return Value::integer(r);
    }
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0 && std::isfinite(d) && std::abs(d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(d));
  }
  return dflt;
}

Value filter_float(const Value& v, CallArgs& a, Interpreter&) {
  Value dflt = a.get_or(0, "default", Value::number(0.0));
  if (v.is_number()) return Value::number(v.as_double());
  if (v.is_string()) {
    std::string s = py_strip(v.str(), Value(), true, true);
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end && *end == 0) return Value::number(d);
  }
  return dflt;
}

Value filter_round(const Value& v, CallArgs& a, Interpreter&) {
  int64_t precision = std::clamp<int64_t>(int_arg(a, 0, "precision", 0), -300, 300);
  std::string method = a.get_or(1, "method", Value::string("common")).to_str();
  if (!v.is_number()) fail("round: expected a number, got " + v.type_name());
  if (method != "common" && method != "ceil" && method != "floor")
    fail("method must be 'common', 'ceil' or 'floor'");
  if (method == "common" && !v.is_float()) return Value::integer(v.as_int());
  double p = std::pow(10.0, static_cast<double>(precision));
  double x = v.as_double() * p;
  double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
  return Value::number(r / p);
}

Value filter_sort(const Value& v, CallArgs& a, Interpreter& in) {
  bool reverse = bool_arg(a, 0, "reverse", false), cs = bool_arg(a, 1, "case_sensitive", false);
  std::string attribute = attribute_arg(a, 2);
  List items = iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& it : items) {
    in.count_iteration();
    keyed.emplace_back(sort_key(it, attribute, cs), it);
  }
  std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& x, const auto& y) {
    return reverse ? compare(y.first, x.first) < 0 : compare(x.first, y.first) < 0;
  });
  List out;
  for (auto& k : keyed) out.push_back(k.second);
  return Value::list(std::move(out));
}

Value filter_unique(const Value& v, CallArgs& a, Interpreter& in) {
  bool cs = bool_arg(a, 0, "case_sensitive", false);
  std::string attribute = attribute_arg(a, 1);
  List seen, out;
  for (const auto& it : iterate(v)) {
    in.count_iteration();
    Value k = sort_key(it, attribute, cs);
    bool dup = false;
    for (const auto& s : seen) dup |= equals(s, k);
    if (!dup) {
      seen.push_back(k);
      out.push_back(it);
    }
  }
  return Value::list(std::move(out));
}

Value min_max(const Value& v, CallArgs& a, Interpreter& in, bool max) {
  bool cs = bool_arg(a, 0, "case_sensitive", false);
  std::string attribute = attribute_arg(a, 1);
  Value best;
  Value best_key;
  for (const auto& it : iterate(v)) {
    in.count_iteration();
    Value k = sort_key(it, attribute, cs);
    if (best.is_undefined() || (max ? compare(k, best_key) > 0 : compare(k, best_key) < 0)) {
      best = it;
      best_key = k;
    }
  }
  if (best.is_undefined()) return Value::undefined(std::string("No ") + (max ? "largest" : "smallest") + " item, sequence was empty.");
  return best;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const std::map<std::string, FilterFn, std::less<>>& filters() {
  static const std::map<std::string, FilterFn, std::less<>> f = {
      {"tojson", filter_tojson},
      {"trim",
       [](const Value& v, CallArgs& a, Interpreter&) {
         return Value::string(py_strip(v.to_str(), a.get_or(0, "chars", Value()), true, true));
       }},
      {"upper", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(map_cps(v.to_str(), upper_cp)); }},
      {"lower", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(map_cps(v.to_str(), lower_cp)); }},
      {"capitalize", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(py_capitalize(v.to_str())); }},
      {"title", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(jinja_title(v.to_str())); }},
      {"length", [](const Value& v, CallArgs&, Interpreter&) { return Value::integer(length(v)); }},
      {"count", [](const Value& v, CallArgs&, Interpreter&) { return Value::integer(length(v)); }},
      {"first",
       [](const Value& v, CallArgs&, Interpreter&) {
         List items = iterate(v);
         return items.empty() ? Value::undefined("No first item, sequence was empty.") : items.front();
       }},
      {"last",
       [](const Value& v, CallArgs&, Interpreter&) {
         List items = iterate(v);
         return items.empty() ? Value::undefined("No last item, sequence was empty.") : items.back();
       }},
      {"join",
       [](const Value& v, CallArgs& a, Interpreter& in) {
         std::string sep = a.get_or(0, "d", Value::string("")).to_str();
         std::string attribute = attribute_arg(a, 1);
         std::string out;
         bool first = true;
         for (const auto& it : iterate(v)) {
           in.count_iteration();
           if (!first) out += sep;
           first = false;
           out += (attribute.empty() ? it : lookup_path(it, attribute)).to_str();
           if (out.size() > kMaxStringBytes) fail("string too large");
         }
         return Value::string(std::move(out));
       }},
      {"default",
       [](const Value& v, CallArgs& a, Interpreter&) {
         Value dflt = a.get_or(0, "default_value", Value::string(""));
         bool boolean = bool_arg(a, 1, "boolean", false);
         return v.is_undefined() || (boolean && !v.truthy()) ? dflt : v;
       }},
      {"string", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(v.to_str()); }},
      {"int", filter_int},
      {"float", filter_float},
      {"list", [](const Value& v, CallArgs&, Interpreter&) { return Value::list(iterate(v)); }},
      {"items",
       [](const Value& v, CallArgs&, Interpreter&) {
         if (v.is_undefined()) return Value::list();
         if (!v.is_dict()) fail("Can only get item pairs from a mapping.");
         List out;
         for (const auto& [k, x] : v.map().entries) out.push_back(Value::list({k, x}, true));
         return Value::list(std::move(out));
       }},
      {"replace",
       [](const Value& v, CallArgs& a, Interpreter&) {
         const Value* old = a.get(0, "old");
         const Value* neu = a.get(1, "new");
         if (!old || !neu) fail("replace needs old and new strings");
         return Value::string(py_replace(v.to_str(), old->to_str(), neu->to_str(), int_arg(a, 2, "count", -1)));
       }},
      {"safe", [](const Value& v, CallArgs&, Interpreter&) { return v; }},
      {"escape", [](const Value& v, CallArgs&, Interpreter&) { return Value::string(html_escape(v.to_str())); }},
      {"indent", filter_indent},
      {"map", filter_map},
      {"select", [](const Value& v, CallArgs& a, Interpreter& in) { return select_impl(v, a, in, false, true); }},
      {"reject", [](const Value& v, CallArgs& a, Interpreter& in) { return select_impl(v, a, in, false, false); }},
      {"selectattr", [](const Value& v, CallArgs& a, Interpreter& in) { return select_impl(v, a, in, true, true); }},
      {"rejectattr", [](const Value& v, CallArgs& a, Interpreter& in) { return select_impl(v, a, in, true, false); }},
      {"unique", filter_unique},
      {"dictsort",
       [](const Value& v, CallArgs& a, Interpreter& in) {
         if (!v.is_dict()) fail("You can only sort by either \"key\" or \"value\" of a mapping.");
         bool cs = bool_arg(a, 0, "case_sensitive", false);
         std::string by = a.get_or(1, "by", Value::string("key")).to_str();
         bool reverse = bool_arg(a, 2, "reverse", false);
         if (by != "key" && by != "value") fail("You can only sort by either \"key\" or \"value\"");
         std::vector<std::pair<Value, Value>> keyed;
         for (const auto& [k, x] : v.map().entries) {
           in.count_iteration();
           keyed.emplace_back(sort_key(by == "key" ? k : x, "", cs), Value::list({k, x}, true));
         }
         std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto& p, const auto& q) {
           return reverse ? compare(q.first, p.first) < 0 : compare(p.first, q.first) < 0;
         });
         List out;
         for (auto& k : keyed) out.push_back(k.second);
         return Value::list(std::move(out));
       }},
      {"sort", filter_sort},
      {"reverse",
       [](const Value& v, CallArgs&, Interpreter&) {
         if (v.is_string()) {
           std::u32string u = utf8_decode(v.str());
           std::reverse(u.begin(), u.end());
           return Value::string(utf8_encode(u));
         }
         List items = iterate(v);
         std::reverse(items.begin(), items.end());
         return Value::list(std::move(items));
       }},
      {"round", filter_round},
      {"abs",
       [](const Value& v, CallArgs&, Interpreter&) {
         if (v.is_float()) return Value::number(std::fabs(v.as_double()));
         if (!v.is_number()) fail("bad operand type for abs(): '" + v.type_name() + "'");
         if (v.as_int() == INT64_MIN) fail("integer overflow");
         return Value::integer(std::llabs(v.as_int()));
       }},
      {"sum",
       [](const Value& v, CallArgs& a, Interpreter& in) {
         std::string attribute = attribute_arg(a, 0);
         Value total = a.get_or(1, "start", Value::integer(0));
         for (const auto& it : iterate(v)) {
           in.count_iteration();
           Value x = attribute.empty() ? it : lookup_path(it, attribute);
           if (!x.is_number() || !total.is_number())
             fail("unsupported operand type(s) for +: '" + total.type_name() + "' and '" + x.type_name() + "'");
           int64_t r;
           if (!x.is_float() && !total.is_float() && !__builtin_add_overflow(total.as_int(), x.as_int(), &r))
             total = Value::integer(r);
           else
             total = Value::number(total.as_double() + x.as_double());
         }
         return total;
       }},
      {"min", [](const Value& v, CallArgs& a, Interpreter& in) { return min_max(v, a, in, false); }},
      {"max", [](const Value& v, CallArgs& a, Interpreter& in) { return min_max(v, a, in, true); }},
      {"attr",
       [](const Value& v, CallArgs& a, Interpreter&) {
         const Value* n = a.get(0, "name");
         if (!n) fail("attr needs a name");
         // Python getattr only: a dict's keys are not attributes (Jinja2's do_attr).
         if (v.is_dict()) {
           Value m = get_attr(v, n->to_str());
           return m.is_callable() ? m : Value::undefined("'dict object' has no attribute '" + n->to_str() + "'");
         }
         return get_attr(v, n->to_str());
       }},
      {"wordcount",
       [](const Value& v, CallArgs&, Interpreter&) {
         int64_t n = 0;
         bool in_word = false;
         for (char32_t c : utf8_decode(v.to_str())) {
           bool w = alpha(c) || digit(c) || c == '_';
           if (w && !in_word) ++n;
           in_word = w;
         }
         return Value::integer(n);
       }},
  };
  return f;
}

std::string filter_alias(std::string_view name) {
  if (name == "d") return "default";
  if (name == "e") return "escape";
  return std::string(name);
}
}  // namespace

bool has_filter(std::string_view name) { return filters().count(filter_alias(name)) > 0; }

Value apply_filter(const std::string& name, const Value& input, CallArgs& args, Interpreter& in) {
  auto it = filters().find(filter_alias(name));
  if (it == filters().end()) fail("no filter named '" + name + "'");
  return it->second(input, args, in);
}

// ---- globals ----
std::vector<std::pair<std::string, Value>> make_globals() {
  std::vector<std::pair<std::string, Value>> g;
  g.emplace_back("range", Value::callable("range", [](CallArgs& a, Interpreter&) {
                   if (!a.kw.empty()) fail("range() takes no keyword arguments");
                   if (a.pos.empty() || a.pos.size() > 3)
                     fail("range expected 1 to 3 arguments, got " + std::to_string(a.pos.size()));
                   int64_t start = 0, stop, step = 1;
                   if (a.pos.size() == 1) {
                     stop = to_index(a.pos[0], "range() argument");
                   } else {
                     start = to_index(a.pos[0], "range() argument");
                     stop = to_index(a.pos[1], "range() argument");
                     if (a.pos.size() == 3) step = to_index(a.pos[2], "range() argument");
                   }
                   if (step == 0) fail("range() arg 3 must not be zero");
                   __int128 count = step > 0 ? (static_cast<__int128>(stop) - start + step - 1) / step
                                             : (static_cast<__int128>(start) - stop - step - 1) / -step;
                   if (count < 0) count = 0;
                   if (count > 100000)
                     fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
                   List out;
                   for (__int128 i = 0; i < count; ++i) out.push_back(Value::integer(static_cast<int64_t>(start + i * step)));
                   return Value::list(std::move(out));
                 }));
  g.emplace_back("namespace", Value::callable("namespace", [](CallArgs& a, Interpreter& in) {
                   Value ns = in.make_namespace();
                   for (const auto& p : a.pos) {
                     if (!p.is_dict()) fail("namespace() positional argument must be a dict");
                     for (const auto& [k, v] : p.map().entries) ns.map().set(k, v);
                   }
                   for (const auto& [k, v] : a.kw) ns.map().set(Value::string(k), v);
                   return ns;
                 }));
  g.emplace_back("dict", Value::callable("dict", [](CallArgs& a, Interpreter&) {
                   Value d = Value::dict();
                   for (const auto& p : a.pos) {
                     if (!p.is_dict()) fail("dict() positional argument must be a dict");
                     for (const auto& [k, v] : p.map().entries) d.map().set(k, v);
                   }
                   for (const auto& [k, v] : a.kw) d.map().set(Value::string(k), v);
                   return d;
                 }));
  g.emplace_back("raise_exception", Value::callable("raise_exception", [](CallArgs& a, Interpreter&) -> Value {
                   const Value* m = a.get(0, "message");
                   throw TemplateError{m ? m->to_str() : std::string(), true};
                 }));
  g.emplace_back("strftime_now", Value::callable("strftime_now", [](CallArgs& a, Interpreter&) {
                   const Value* f = a.get(0, "format");
                   if (!f || !f->is_string()) fail("strftime_now() needs a format string");
                   std::time_t t = std::time(nullptr);
                   std::tm tm{};
                   localtime_r(&t, &tm);
                   char buf[512];
                   size_t n = f->str().empty() ? 0 : std::strftime(buf, sizeof buf, f->str().c_str(), &tm);
                   return Value::string(std::string(buf, n));
                 }));
  return g;
}

}  // namespace fathom::formats::jinja
