#include "formats/torch_pickle.h"

#include <cstring>
#include <deque>
#include <map>
#include <string_view>
#include <unordered_map>

namespace fathom::formats {
namespace {

// Caps on what one pickle may build. A state dict needs ~20 objects per tensor and a handful of stack
// entries; these are far above any real checkpoint and keep a hostile one's memory bounded.
constexpr std::size_t kMaxObjects = 1u << 22;
constexpr std::size_t kMaxStack = 1u << 20;
constexpr std::size_t kMaxMemo = 1u << 20;
constexpr std::size_t kMaxMarks = 1u << 16;
constexpr std::size_t kMaxGlobalName = 256;  // GLOBAL's text lines

struct StorageClass {
  std::string_view torch_name;  // the global torch.<torch_name>
  std::string_view dtype_name;  // safetensors' dtype name
  std::size_t element_size;
};
constexpr StorageClass kStorageClasses[] = {
    {"FloatStorage", "F32", 4}, {"HalfStorage", "F16", 2},  {"BFloat16Storage", "BF16", 2}, {"DoubleStorage", "F64", 8},
    {"LongStorage", "I64", 8},  {"IntStorage", "I32", 4},   {"ShortStorage", "I16", 2},     {"CharStorage", "I8", 1},
    {"ByteStorage", "U8", 1},   {"BoolStorage", "BOOL", 1},
};

enum class Kind : uint8_t { kNone, kBool, kInt, kFloat, kString, kBytes, kTuple, kList, kDict, kGlobal, kStorage, kTensor };
enum class Callable : uint8_t { kOrderedDict, kRebuildTensorV2, kRebuildTensor, kRebuildParameter, kStorageClass };

// "an int", "a tuple", ... for messages.
const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kNone: return "None";
    case Kind::kBool: return "a bool";
    case Kind::kInt: return "an int";
    case Kind::kFloat: return "a float";
    case Kind::kString: return "a str";
    case Kind::kBytes: return "bytes";
    case Kind::kTuple: return "a tuple";
    case Kind::kList: return "a list";
    case Kind::kDict: return "a dict";
    case Kind::kGlobal: return "a global";
    case Kind::kStorage: return "a storage";
    case Kind::kTensor: return "a tensor";
  }
  return "?";
}

// One pickled object. A fat struct (each kind uses a few fields) kept in the evaluation's arena.
struct Value {
  Kind kind = Kind::kNone;
  int64_t integer = 0;                          // kBool (0/1), kInt
  double real = 0;                              // kFloat
  std::string text;                             // kString, kBytes; kGlobal "module.name"; kStorage its key
  std::vector<Value*> items;                    // kTuple, kList; kDict: key, value, key, value, ...
  Callable callable = Callable::kOrderedDict;   // kGlobal
  const StorageClass* storage_class = nullptr;  // kGlobal of kStorageClass, kStorage
  uint64_t count = 0;                           // kStorage: numel; kTensor: storage offset
  const Value* storage = nullptr;               // kTensor
  std::vector<int64_t> shape, stride;           // kTensor
};

class Machine {
 public:
  Machine(std::span<const std::byte> pickle, const std::string& where) : p_(pickle), where_(where) {}

  // Runs to STOP and returns the pickle's value.
  Result<Value*> run();

 private:
  Error fail(const std::string& what) const {
    return make_error(ErrorCode::kLoadFailed, where_ + ": " + what + " (opcode at byte " + std::to_string(op_pos_) + ")");
  }
  Result<Value*> make(Kind kind);
  Status push(Value* v);
  Result<Value*> pop();
  Result<Value*> top();
  Result<std::vector<Value*>> pop_to_mark();
  Result<uint64_t> read_le(std::size_t n);
  Result<std::string> read_text(uint64_t n);
  Result<std::string> read_line();
  Status memo_put(uint64_t index);
  Status memo_get(uint64_t index);
  Status push_int(int64_t v);
  Status push_text(Kind kind, uint64_t len);
  Status push_long(std::size_t n);
  Status make_tuple(std::vector<Value*> items);
  Status global(const std::string& module, const std::string& name);
  Status reduce();
  Result<Value*> rebuild_tensor(const std::vector<Value*>& args, bool v2);
  Status persistent_load();
  Status step(uint8_t op, bool* stop);

  std::span<const std::byte> p_;
  const std::string& where_;
  std::size_t pos_ = 0, op_pos_ = 0;
  std::deque<Value> arena_;
  std::vector<Value*> stack_;
  std::vector<std::size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
};

Result<Value*> Machine::make(Kind kind) {
  if (arena_.size() >= kMaxObjects) return fail("more than " + std::to_string(kMaxObjects) + " objects");
  arena_.emplace_back();
  arena_.back().kind = kind;
  return &arena_.back();
}

Status Machine::push(Value* v) {
  if (stack_.size() >= kMaxStack) return fail("stack deeper than " + std::to_string(kMaxStack));
  stack_.push_back(v);
  return Status::Ok();
}

// The topmost MARK is a fence: popping below it is an underflow, as in CPython.
Result<Value*> Machine::pop() {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return fail("stack underflow");
  Value* v = stack_.back();
  stack_.pop_back();
  return v;
}

Result<Value*> Machine::top() {
  if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) return fail("stack underflow");
  return stack_.back();
}

Result<std::vector<Value*>> Machine::pop_to_mark() {
  if (marks_.empty()) return fail("no MARK to pop to");
  const std::size_t m = marks_.back();
  marks_.pop_back();
  std::vector<Value*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
  stack_.resize(m);
  return items;
}

Result<uint64_t> Machine::read_le(std::size_t n) {
  if (p_.size() - pos_ < n) return fail("truncated pickle");
  uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p_[pos_ + i])) << (8 * i);
  pos_ += n;
  return v;
}

Result<std::string> Machine::read_text(uint64_t n) {
  if (p_.size() - pos_ < n) return fail("truncated pickle: a string of " + std::to_string(n) + " bytes");
  std::string s(reinterpret_cast<const char*>(p_.data() + pos_), static_cast<std::size_t>(n));
  pos_ += static_cast<std::size_t>(n);
  return s;
}

Result<std::string> Machine::read_line() {
  std::string s;
  while (pos_ < p_.size() && s.size() <= kMaxGlobalName) {
    const char c = static_cast<char>(p_[pos_++]);
    if (c == '\n') return s;
    s += c;
  }
  return fail(s.size() > kMaxGlobalName ? "GLOBAL name longer than " + std::to_string(kMaxGlobalName) + " bytes"
                                        : "truncated pickle");
}

Status Machine::memo_put(uint64_t index) {
  FATHOM_ASSIGN_OR_RETURN(Value * v, top());
  if (memo_.size() >= kMaxMemo && !memo_.count(index)) return fail("memo larger than " + std::to_string(kMaxMemo));
  memo_[index] = v;
  return Status::Ok();
}

Status Machine::memo_get(uint64_t index) {
  auto it = memo_.find(index);
  if (it == memo_.end()) return fail("memo index " + std::to_string(index) + " was never stored");
  return push(it->second);
}

Status Machine::push_int(int64_t v) {
  FATHOM_ASSIGN_OR_RETURN(Value * x, make(Kind::kInt));
  x->integer = v;
  return push(x);
}

Status Machine::push_text(Kind kind, uint64_t len) {
  FATHOM_ASSIGN_OR_RETURN(std::string s, read_text(len));
  FATHOM_ASSIGN_OR_RETURN(Value * x, make(kind));
  x->text = std::move(s);
  return push(x);
}

// LONG1 / LONG4: n bytes of little-endian two's complement; fathom needs no more than 64 bits.
Status Machine::push_long(std::size_t n) {
  if (n > 8) return fail("integer of " + std::to_string(n) + " bytes, wider than 64 bits");
  FATHOM_ASSIGN_OR_RETURN(uint64_t u, read_le(n));
  if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);  // sign-extend
  return push_int(static_cast<int64_t>(u));
}

Status Machine::make_tuple(std::vector<Value*> items) {
  FATHOM_ASSIGN_OR_RETURN(Value * t, make(Kind::kTuple));
  t->items = std::move(items);
  return push(t);
}

Status Machine::global(const std::string& module, const std::string& name) {
  FATHOM_ASSIGN_OR_RETURN(Value * g, make(Kind::kGlobal));
  g->text = module + "." + name;
  if (module == "collections" && name == "OrderedDict") {
    g->callable = Callable::kOrderedDict;
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g->callable = Callable::kRebuildTensorV2;
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    g->callable = Callable::kRebuildTensor;
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g->callable = Callable::kRebuildParameter;
  } else if (module == "torch") {
    for (const auto& sc : kStorageClasses)
      if (name == sc.torch_name) g->storage_class = &sc;
    if (!g->storage_class) {
      std::string known;
      for (const auto& sc : kStorageClasses) known += (known.empty() ? "" : ", ") + std::string(sc.torch_name);
      return fail("uses '" + g->text + "', which fathom does not read (storage classes read: " + known + ")");
    }
    g->callable = Callable::kStorageClass;
  } else {
    return fail("uses '" + g->text + "', which a state dict never holds; fathom does not execute pickled code");
  }
  return push(g);
}

// BINPERSID: ('storage', <storage class>, key, location, numel) -> a storage.
Status Machine::persistent_load() {
  FATHOM_ASSIGN_OR_RETURN(Value * pid, pop());
  const auto& it = pid->items;
  if (pid->kind != Kind::kTuple || it.size() != 5 || it[0]->kind != Kind::kString || it[0]->text != "storage" ||
      it[1]->kind != Kind::kGlobal || it[1]->callable != Callable::kStorageClass || it[2]->kind != Kind::kString ||
      it[3]->kind != Kind::kString || it[4]->kind != Kind::kInt || it[4]->integer < 0)
    return fail("persistent id is not ('storage', <storage class>, key, location, numel)");
  FATHOM_ASSIGN_OR_RETURN(Value * s, make(Kind::kStorage));
  s->storage_class = it[1]->storage_class;
  s->text = it[2]->text;
  s->count = static_cast<uint64_t>(it[4]->integer);
  return push(s);
}

// _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) or
// _rebuild_tensor(storage, storage_offset, size, stride).
Result<Value*> Machine::rebuild_tensor(const std::vector<Value*>& a, bool v2) {
  const char* fn = v2 ? "torch._utils._rebuild_tensor_v2" : "torch._utils._rebuild_tensor";
  if (v2 ? (a.size() != 6 && a.size() != 7) : a.size() != 4)
    return fail(std::string(fn) + " called with " + std::to_string(a.size()) + " arguments");
  if (a[0]->kind != Kind::kStorage) return fail(std::string(fn) + ": storage is " + kind_name(a[0]->kind));
  if (a[1]->kind != Kind::kInt || a[1]->integer < 0) return fail(std::string(fn) + ": storage_offset is not an int >= 0");
  if (a[2]->kind != Kind::kTuple || a[3]->kind != Kind::kTuple || a[2]->items.size() != a[3]->items.size())
    return fail(std::string(fn) + ": size and stride are not tuples of one length");
  if (v2 && a[4]->kind != Kind::kBool) return fail(std::string(fn) + ": requires_grad is " + kind_name(a[4]->kind));
  FATHOM_ASSIGN_OR_RETURN(Value * t, make(Kind::kTensor));
  t->storage = a[0];
  t->count = static_cast<uint64_t>(a[1]->integer);
  for (std::size_t i = 0; i < a[2]->items.size(); ++i) {
    const Value* size = a[2]->items[i];
    const Value* stride = a[3]->items[i];
    if (size->kind != Kind::kInt || size->integer < 0 || stride->kind != Kind::kInt)
      return fail(std::string(fn) + ": size or stride holds something other than an int (sizes >= 0)");
    t->shape.push_back(size->integer);
    t->stride.push_back(stride->integer);
  }
  return t;
}

Status Machine::reduce() {
  FATHOM_ASSIGN_OR_RETURN(Value * args, pop());
  FATHOM_ASSIGN_OR_RETURN(Value * fn, pop());
  if (fn->kind != Kind::kGlobal) return fail(std::string("REDUCE calls ") + kind_name(fn->kind));
  if (args->kind != Kind::kTuple) return fail(std::string("REDUCE arguments are ") + kind_name(args->kind));
  const auto& a = args->items;
  switch (fn->callable) {
    case Callable::kOrderedDict: {
      if (!a.empty()) return fail("collections.OrderedDict called with arguments");
      FATHOM_ASSIGN_OR_RETURN(Value * d, make(Kind::kDict));
      return push(d);
    }
    case Callable::kRebuildTensorV2:
    case Callable::kRebuildTensor: {
      FATHOM_ASSIGN_OR_RETURN(Value * t, rebuild_tensor(a, fn->callable == Callable::kRebuildTensorV2));
      return push(t);
    }
    case Callable::kRebuildParameter:
      if (a.size() != 3 || a[0]->kind != Kind::kTensor)
        return fail("torch._utils._rebuild_parameter is not called with (tensor, requires_grad, hooks)");
      return push(a[0]);
    case Callable::kStorageClass:
      break;
  }
  return fail("REDUCE calls '" + fn->text + "', which is not callable here");
}

Status Machine::step(uint8_t op, bool* stop) {
  switch (op) {
    case 0x80: {  // PROTO
      FATHOM_ASSIGN_OR_RETURN(uint64_t v, read_le(1));
      if (v < 2 || v > 5) return fail("pickle protocol " + std::to_string(v) + " (2 to 5 are read)");
      return Status::Ok();
    }
    case 0x95: {  // FRAME: a size hint only
      FATHOM_ASSIGN_OR_RETURN(uint64_t size, read_le(8));
      (void)size;
      return Status::Ok();
    }
    case '.': *stop = true; return Status::Ok();  // STOP
    case '(':  // MARK
      if (marks_.size() >= kMaxMarks) return fail("more than " + std::to_string(kMaxMarks) + " open MARKs");
      marks_.push_back(stack_.size());
      return Status::Ok();
    case '0': {  // POP
      FATHOM_ASSIGN_OR_RETURN(Value * v, pop());
      (void)v;
      return Status::Ok();
    }
    case '1': {  // POP_MARK
      FATHOM_ASSIGN_OR_RETURN(auto items, pop_to_mark());
      (void)items;
      return Status::Ok();
    }
    case '2': {  // DUP
      FATHOM_ASSIGN_OR_RETURN(Value * v, top());
      return push(v);
    }
    case 'N': {  // NONE
      FATHOM_ASSIGN_OR_RETURN(Value * v, make(Kind::kNone));
      return push(v);
    }
    case 0x88:    // NEWTRUE
    case 0x89: {  // NEWFALSE
      FATHOM_ASSIGN_OR_RETURN(Value * v, make(Kind::kBool));
      v->integer = op == 0x88;
      return push(v);
    }
    case 'J': {  // BININT: signed 32 bits
      FATHOM_ASSIGN_OR_RETURN(uint64_t v, read_le(4));
      return push_int(static_cast<int32_t>(static_cast<uint32_t>(v)));
    }
    case 'K': {  // BININT1
      FATHOM_ASSIGN_OR_RETURN(uint64_t v, read_le(1));
      return push_int(static_cast<int64_t>(v));
    }
    case 'M': {  // BININT2
      FATHOM_ASSIGN_OR_RETURN(uint64_t v, read_le(2));
      return push_int(static_cast<int64_t>(v));
    }
    case 0x8a: {  // LONG1
      FATHOM_ASSIGN_OR_RETURN(uint64_t n, read_le(1));
      return push_long(static_cast<std::size_t>(n));
    }
    case 0x8b: {  // LONG4
      FATHOM_ASSIGN_OR_RETURN(uint64_t n, read_le(4));
      return push_long(static_cast<std::size_t>(n));
    }
    case 'G': {  // BINFLOAT: big-endian IEEE double
      FATHOM_ASSIGN_OR_RETURN(uint64_t le, read_le(8));
      uint64_t be = 0;
      for (int i = 0; i < 8; ++i) be = (be << 8) | ((le >> (8 * i)) & 0xff);
      FATHOM_ASSIGN_OR_RETURN(Value * v, make(Kind::kFloat));
      static_assert(sizeof(double) == sizeof(uint64_t));
      std::memcpy(&v->real, &be, sizeof be);
      return push(v);
    }
    case 'X': case 'B': {  // BINUNICODE, BINBYTES
      FATHOM_ASSIGN_OR_RETURN(uint64_t n, read_le(4));
      return push_text(op == 'X' ? Kind::kString : Kind::kBytes, n);
    }
    case 0x8c: case 'C': {  // SHORT_BINUNICODE, SHORT_BINBYTES
      FATHOM_ASSIGN_OR_RETURN(uint64_t n, read_le(1));
      return push_text(op == 0x8c ? Kind::kString : Kind::kBytes, n);
    }
    case 0x8d: case 0x8e: {  // BINUNICODE8, BINBYTES8
      FATHOM_ASSIGN_OR_RETURN(uint64_t n, read_le(8));
      return push_text(op == 0x8d ? Kind::kString : Kind::kBytes, n);
    }
    case ')': return make_tuple({});  // EMPTY_TUPLE
    case 't': {  // TUPLE
      FATHOM_ASSIGN_OR_RETURN(auto items, pop_to_mark());
      return make_tuple(std::move(items));
    }
    case 0x85: case 0x86: case 0x87: {  // TUPLE1, TUPLE2, TUPLE3
      std::vector<Value*> items(op - 0x84);
      for (auto it = items.rbegin(); it != items.rend(); ++it) {
        FATHOM_ASSIGN_OR_RETURN(*it, pop());
      }
      return make_tuple(std::move(items));
    }
    case ']': case '}': {  // EMPTY_LIST, EMPTY_DICT
      FATHOM_ASSIGN_OR_RETURN(Value * v, make(op == ']' ? Kind::kList : Kind::kDict));
      return push(v);
    }
    case 'l': case 'd': {  // LIST, DICT (from the items above the mark)
      FATHOM_ASSIGN_OR_RETURN(auto items, pop_to_mark());
      if (op == 'd' && items.size() % 2) return fail("DICT with an odd number of items");
      FATHOM_ASSIGN_OR_RETURN(Value * v, make(op == 'l' ? Kind::kList : Kind::kDict));
      v->items = std::move(items);
      return push(v);
    }
    case 'a': {  // APPEND
      FATHOM_ASSIGN_OR_RETURN(Value * item, pop());
      FATHOM_ASSIGN_OR_RETURN(Value * list, top());
      if (list->kind != Kind::kList) return fail(std::string("APPEND to ") + kind_name(list->kind));
      list->items.push_back(item);
      return Status::Ok();
    }
    case 'e': {  // APPENDS
      FATHOM_ASSIGN_OR_RETURN(auto items, pop_to_mark());
      FATHOM_ASSIGN_OR_RETURN(Value * list, top());
      if (list->kind != Kind::kList) return fail(std::string("APPENDS to ") + kind_name(list->kind));
      list->items.insert(list->items.end(), items.begin(), items.end());
      return Status::Ok();
    }
    case 's': {  // SETITEM
      FATHOM_ASSIGN_OR_RETURN(Value * value, pop());
      FATHOM_ASSIGN_OR_RETURN(Value * key, pop());
      FATHOM_ASSIGN_OR_RETURN(Value * dict, top());
      if (dict->kind != Kind::kDict) return fail(std::string("SETITEM on ") + kind_name(dict->kind));
      dict->items.push_back(key);
      dict->items.push_back(value);
      return Status::Ok();
    }
    case 'u': {  // SETITEMS
      FATHOM_ASSIGN_OR_RETURN(auto items, pop_to_mark());
      FATHOM_ASSIGN_OR_RETURN(Value * dict, top());
      if (dict->kind != Kind::kDict) return fail(std::string("SETITEMS on ") + kind_name(dict->kind));
      if (items.size() % 2) return fail("SETITEMS with an odd number of items");
      dict->items.insert(dict->items.end(), items.begin(), items.end());
      return Status::Ok();
    }
    case 'c': {  // GLOBAL "module\nname\n"
      FATHOM_ASSIGN_OR_RETURN(std::string module, read_line());
      FATHOM_ASSIGN_OR_RETURN(std::string name, read_line());
      return global(module, name);
    }
    case 0x93: {  // STACK_GLOBAL
      FATHOM_ASSIGN_OR_RETURN(Value * name, pop());
      FATHOM_ASSIGN_OR_RETURN(Value * module, pop());
      if (module->kind != Kind::kString || name->kind != Kind::kString) return fail("STACK_GLOBAL of non-strings");
      return global(module->text, name->text);
    }
    case 'R': return reduce();  // REDUCE
    case 'b': {  // BUILD: only an OrderedDict's attributes (`_metadata`), which are ignored
      FATHOM_ASSIGN_OR_RETURN(Value * state, pop());
      (void)state;
      FATHOM_ASSIGN_OR_RETURN(Value * target, top());
      if (target->kind != Kind::kDict) return fail(std::string("BUILD on ") + kind_name(target->kind));
      return Status::Ok();
    }
    case 'Q': return persistent_load();  // BINPERSID
    case 'q': {  // BINPUT
      FATHOM_ASSIGN_OR_RETURN(uint64_t i, read_le(1));
      return memo_put(i);
    }
    case 'r': {  // LONG_BINPUT
      FATHOM_ASSIGN_OR_RETURN(uint64_t i, read_le(4));
      return memo_put(i);
    }
    case 0x94: return memo_put(memo_.size());  // MEMOIZE
    case 'h': {  // BINGET
      FATHOM_ASSIGN_OR_RETURN(uint64_t i, read_le(1));
      return memo_get(i);
    }
    case 'j': {  // LONG_BINGET
      FATHOM_ASSIGN_OR_RETURN(uint64_t i, read_le(4));
      return memo_get(i);
    }
    default: {
      static const char* hex = "0123456789abcdef";
      return fail(std::string("unsupported pickle opcode 0x") + hex[op >> 4] + hex[op & 15]);
    }
  }
}

Result<Value*> Machine::run() {
  bool stop = false;
  while (!stop) {
    op_pos_ = pos_;
    if (pos_ >= p_.size()) return fail("truncated pickle: it ends without STOP");
    FATHOM_TRY(step(static_cast<uint8_t>(p_[pos_++]), &stop));
  }
  if (stack_.empty()) return fail("STOP with an empty stack");
  return stack_.back();
}

}  // namespace

Result<std::vector<PickledTensor>> evaluate_state_dict_pickle(std::span<const std::byte> pickle, const std::string& where) {
  Machine machine(pickle, where);
  FATHOM_ASSIGN_OR_RETURN(const Value* root, machine.run());
  auto bad = [&](const std::string& what) { return make_error(ErrorCode::kLoadFailed, where + ": " + what); };
  if (root->kind != Kind::kDict)
    return bad(std::string("holds ") + kind_name(root->kind) + ", not a state dict (a dict of tensors)");
  std::vector<PickledTensor> out;
  std::map<std::string, std::size_t, std::less<>> position;  // a repeated key overwrites in place
  for (std::size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const Value* key = root->items[i];
    const Value* value = root->items[i + 1];
    if (key->kind != Kind::kString) return bad(std::string("state dict has a key that is ") + kind_name(key->kind));
    if (value->kind != Kind::kTensor)
      return bad("state dict entry '" + key->text + "' is " + kind_name(value->kind) + ", not a tensor");
    PickledTensor t;
    t.name = key->text;
    t.storage_key = value->storage->text;
    t.dtype_name = std::string(value->storage->storage_class->dtype_name);
    t.element_size = value->storage->storage_class->element_size;
    t.storage_numel = value->storage->count;
    t.storage_offset = value->count;
    t.shape = value->shape;
    t.stride = value->stride;
    auto [it, fresh] = position.emplace(t.name, out.size());
    if (fresh) out.push_back(std::move(t)); else out[it->second] = std::move(t);
  }
  return out;
}

}  // namespace fathom::formats
