// PyTorch zip checkpoints (formats/torch_state_dict.h): archives written here with libzip, holding pickles
// assembled by hand the way torch.save (protocol 2, and protocol 4 with pickle_protocol=4) writes them.
#include <gtest/gtest.h>
#include <zip.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/half.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "formats/torch_state_dict.h"

#include "support/temp_dir.h"

namespace fathom::formats {
namespace {
namespace fs = std::filesystem;
using namespace std::string_literals;

using testing::TempDir;

using Records = std::vector<std::pair<std::string, std::string>>;  // zip entry name -> bytes

// Writes `records` to a zip at `path`, stored uncompressed as torch.save does (or deflated).
void write_zip(const fs::path& path, const Records& records, bool deflate = false) {
  int code = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &code);
  ASSERT_NE(z, nullptr) << code;
  for (const auto& [name, data] : records) {
    zip_source_t* src = zip_source_buffer(z, data.data(), data.size(), 0);
    ASSERT_NE(src, nullptr);
    const zip_int64_t i = zip_file_add(z, name.c_str(), src, ZIP_FL_OVERWRITE);
    ASSERT_GE(i, 0) << zip_strerror(z);
    ASSERT_EQ(zip_set_file_compression(z, static_cast<zip_uint64_t>(i), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0), 0);
  }
  ASSERT_EQ(zip_close(z), 0) << zip_strerror(z);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Pickle opcodes by name, and little helpers to assemble a pickle.
struct Pickle {
  std::string b;
  Pickle& raw(std::string_view s) { b += s; return *this; }
  Pickle& op(char c) { b += c; return *this; }
  Pickle& global(std::string_view module, std::string_view name) {
    b += 'c'; b += module; b += '\n'; b += name; b += '\n';
    return *this;
  }
  Pickle& put(int i) { b += 'q'; b += static_cast<char>(i); return *this; }
  Pickle& get(int i) { b += 'h'; b += static_cast<char>(i); return *this; }
  Pickle& str(std::string_view s) {
    b += 'X';
    for (int i = 0; i < 4; ++i) b += static_cast<char>((s.size() >> (8 * i)) & 0xff);
    b += s;
    return *this;
  }
  Pickle& int_(int64_t v) {
    if (v >= 0 && v < 256) { b += 'K'; b += static_cast<char>(v); }
    else if (v >= 0 && v < 65536) { b += 'M'; b += static_cast<char>(v & 0xff); b += static_cast<char>(v >> 8); }
    else { b += 'J'; for (int i = 0; i < 4; ++i) b += static_cast<char>((v >> (8 * i)) & 0xff); }
    return *this;
  }
  Pickle& ints(const std::vector<int64_t>& v) {  // a tuple of ints, as TUPLE1/2/3 or MARK ... TUPLE
    if (v.empty()) return op(')');
    if (v.size() > 3) op('(');
    for (int64_t x : v) int_(x);
    return op(v.size() > 3 ? 't' : static_cast<char>(0x84 + v.size()));
  }
};

// What torch.save writes for one state dict entry, without memo reuse:
//   key, _rebuild_tensor_v2(('storage', torch.<cls>, storage_key, 'cpu', numel), offset, size, stride,
//                           False, OrderedDict())
void tensor_entry(Pickle& p, std::string_view key, std::string_view cls, std::string_view storage_key, int64_t numel,
                  int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  p.str(key).global("torch._utils", "_rebuild_tensor_v2").op('(');
  p.op('(').str("storage").global("torch", cls).str(storage_key).str("cpu").int_(numel).op('t').op('Q');
  p.int_(offset).ints(size).ints(stride).op('\x89').global("collections", "OrderedDict").op(')').op('R');
  p.op('t').op('R');
}

// A protocol-2 state dict pickle: OrderedDict() R ( entries u BUILD({'_metadata': ...}) .
std::string state_dict(const std::function<void(Pickle&)>& entries) {
  Pickle p;
  p.raw("\x80\x02").global("collections", "OrderedDict").put(0).op(')').op('R').put(1).op('(');
  entries(p);
  p.op('u').op('}').str("_metadata").get(0).op(')').op('R').str("").op('}').str("version").int_(1).op('s').op('s').op('s');
  p.op('b').op('.');
  return p.b;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  std::string s(v.size() * sizeof(T), '\0');
  std::memcpy(s.data(), v.data(), s.size());
  return s;
}

// The exact bytes torch 2.x writes for OrderedDict weight f32 [2, 3], bias f32 [2] (memo reuse included).
std::string linear_pickle() {
  Pickle p;
  p.raw("\x80\x02").global("collections", "OrderedDict").put(0).op(')').op('R').put(1).op('(');
  p.str("weight").put(2).global("torch._utils", "_rebuild_tensor_v2").put(3).op('(').op('(').str("storage").put(4);
  p.global("torch", "FloatStorage").put(5).str("0").put(6).str("cpu").put(7).int_(6).op('t').put(8).op('Q');
  p.int_(0).int_(2).int_(3).op('\x86').put(9).int_(3).int_(1).op('\x86').put(10).op('\x89').get(0).op(')').op('R');
  p.put(11).op('t').put(12).op('R').put(13);
  p.str("bias").put(14).get(3).op('(').op('(').get(4).get(5).str("1").put(15).get(7).int_(2).op('t').put(16).op('Q');
  p.int_(0).int_(2).op('\x85').put(17).int_(1).op('\x85').put(18).op('\x89').get(0).op(')').op('R').put(19);
  p.op('t').put(20).op('R').put(21);
  p.op('u').op('}').put(22).str("_metadata").put(23).get(0).op(')').op('R').put(24).str("").put(25).op('}').put(26);
  p.str("version").put(27).int_(1).op('s').op('s').op('s').op('b').op('.');
  return p.b;
}

Records linear_records(const std::string& pickle) {
  return {{"archive/data.pkl", pickle},
          {"archive/byteorder", "little"},
          {"archive/data/0", raw_bytes(std::vector<float>{1, 2, 3, 4, 5, 6})},
          {"archive/data/1", raw_bytes(std::vector<float>{0.5f, -1})},
          {"archive/version", "3\n"}};
}

std::vector<float> floats(const TensorInfo& t) {
  std::vector<float> v(t.nbytes / 4);
  std::memcpy(v.data(), t.data, t.nbytes);
  return v;
}

// open_file's error for an archive holding `records` (the test fails when it opens).
std::string open_error(const Records& records, const std::string& name = "bad.pt") {
  TempDir dir;
  const fs::path p = dir.path() / name;
  write_zip(p, records);
  auto c = Checkpoint::open_file(p);
  EXPECT_FALSE(c.ok());
  if (c.ok()) return "";
  EXPECT_EQ(c.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(c.error().message.find(p.string()), std::string::npos) << c.error().message;
  return c.error().message;
}

TEST(TorchStateDict, ReadsALinearLayersStateDictAsTorchWritesIt) {
  TempDir dir;
  const fs::path p = dir.path() / "sparse_linear.pt";
  write_zip(p, linear_records(linear_pickle()));
  auto c = Checkpoint::open_file(p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->description(), p.string());
  EXPECT_EQ(c->names(), (std::vector<std::string>{"bias", "weight"}));
  const TensorInfo* w = c->find("weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype_name, "F32");
  EXPECT_EQ(w->dtype, DType::kF32);
  EXPECT_EQ(w->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(w->nbytes, 24u);
  EXPECT_EQ(floats(*w), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  const TensorInfo* b = c->find("bias");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(floats(*b), (std::vector<float>{0.5f, -1}));
  EXPECT_EQ(c->file_of("bias"), p);
}

TEST(TorchStateDict, ParsesAnImageInMemoryAndDeflatedRecords) {
  TempDir dir;
  const fs::path p = dir.path() / "deflated.pt";
  write_zip(p, linear_records(linear_pickle()), /*deflate=*/true);
  const std::string image = read_file(p);
  auto f = parse_torch_state_dict(reinterpret_cast<const std::byte*>(image.data()), image.size(), "mem.pt");
  ASSERT_TRUE(f.ok()) << f.error().message;
  EXPECT_EQ((*f)->path(), fs::path("mem.pt"));
  ASSERT_NE((*f)->find("weight"), nullptr);
  EXPECT_EQ(floats(*(*f)->find("weight")), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(TorchStateDict, ReadsHalfBfloat16IntegerAndDoubleTensorsAnyPrefix) {
  const std::vector<float> values = {1.5f, -2, 0.25f};
  std::vector<uint16_t> f16, bf16;
  for (float v : values) f16.push_back(f32_to_f16(v)), bf16.push_back(f32_to_bf16(v));
  const std::string pickle = state_dict([](Pickle& p) {
    tensor_entry(p, "h", "HalfStorage", "0", 3, 0, {3}, {1});
    tensor_entry(p, "b", "BFloat16Storage", "1", 3, 0, {1, 3}, {3, 1});
    tensor_entry(p, "steps", "LongStorage", "2", 1, 0, {}, {});  // a 0-dim tensor (num_batches_tracked)
    tensor_entry(p, "d", "DoubleStorage", "3", 2, 0, {2}, {1});
    tensor_entry(p, "i", "IntStorage", "4", 2, 0, {2, 1}, {1, 7});  // a size-1 dimension's stride is free
  });
  TempDir dir;
  const fs::path p = dir.path() / "mixed.pt";
  write_zip(p, {{"mixed/data.pkl", pickle},
                {"mixed/data/0", raw_bytes(f16)},
                {"mixed/data/1", raw_bytes(bf16)},
                {"mixed/data/2", raw_bytes(std::vector<int64_t>{42})},
                {"mixed/data/3", raw_bytes(std::vector<double>{0.5, 2})},
                {"mixed/data/4", raw_bytes(std::vector<int32_t>{-3, 9})}});
  auto c = Checkpoint::open_file(p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  const TensorInfo* h = c->find("h");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(h->dtype_name, "F16");
  EXPECT_EQ(h->dtype, DType::kF16);
  EXPECT_EQ(h->nbytes, 6u);
  EXPECT_EQ(f16_to_f32(static_cast<const uint16_t*>(h->data)[1]), -2.0f);
  const TensorInfo* b = c->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype_name, "BF16");
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(bf16_to_f32(static_cast<const uint16_t*>(b->data)[2]), 0.25f);
  const TensorInfo* s = c->find("steps");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->dtype, DType::kI64);
  EXPECT_EQ(s->dtype_name, "I64");
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->nbytes, 8u);
  EXPECT_EQ(*static_cast<const int64_t*>(s->data), 42);
  const TensorInfo* d = c->find("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->dtype_name, "F64");
  EXPECT_FALSE(d->dtype.has_value());
  EXPECT_EQ(static_cast<const double*>(d->data)[1], 2.0);
  const TensorInfo* i = c->find("i");
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->dtype, DType::kI32);
  EXPECT_EQ(static_cast<const int32_t*>(i->data)[0], -3);
}

TEST(TorchStateDict, TensorsSharingAStorageAtOffsets) {
  // Two views of one 10-element storage (e.g. a fused qkv split), the second at element 4.
  const std::string pickle = state_dict([](Pickle& p) {
    tensor_entry(p, "a", "FloatStorage", "0", 10, 0, {4}, {1});
    tensor_entry(p, "b", "FloatStorage", "0", 10, 4, {2, 3}, {3, 1});
  });
  TempDir dir;
  const fs::path p = dir.path() / "shared.pt";
  write_zip(p, {{"archive/data.pkl", pickle}, {"archive/data/0", raw_bytes(std::vector<float>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})}});
  auto c = Checkpoint::open_file(p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  const TensorInfo* a = c->find("a");
  const TensorInfo* b = c->find("b");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(floats(*a), (std::vector<float>{0, 1, 2, 3}));
  EXPECT_EQ(floats(*b), (std::vector<float>{4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(static_cast<const std::byte*>(b->data), static_cast<const std::byte*>(a->data) + 16);  // read once
}

TEST(TorchStateDict, ParametersAndPlainDicts) {
  // torch.save({'w': nn.Parameter(...)}): a plain dict, the tensor wrapped by _rebuild_parameter.
  Pickle p;
  p.raw("\x80\x02").op('}').put(0).op('(').str("w").global("torch._utils", "_rebuild_parameter").op('(');
  Pickle inner;
  tensor_entry(inner, "", "FloatStorage", "0", 2, 0, {2}, {1});
  p.raw(inner.b.substr(5));  // the entry without its key (X + 4 length bytes, empty)
  p.op('\x88').global("collections", "OrderedDict").op(')').op('R').op('t').op('R').op('u').op('.');
  TempDir dir;
  const fs::path path = dir.path() / "param.pt";
  write_zip(path, {{"archive/data.pkl", p.b}, {"archive/data/0", raw_bytes(std::vector<float>{7, 8})}});
  auto c = Checkpoint::open_file(path);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_NE(c->find("w"), nullptr);
  EXPECT_EQ(floats(*c->find("w")), (std::vector<float>{7, 8}));
}

TEST(TorchStateDict, Protocol4Opcodes) {
  // FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, BINGET of a MEMOIZE'd index, LONG1, EMPTY_DICT+SETITEM.
  std::string b = "\x80\x04\x95";
  b += std::string("\x40\0\0\0\0\0\0\0", 8);
  auto sstr = [&](std::string_view s) { b += '\x8c'; b += static_cast<char>(s.size()); b += s; b += '\x94'; };
  b += "}\x94";                                                               // memo 0: the dict
  sstr("w");                                                                  // memo 1
  sstr("torch._utils"), sstr("_rebuild_tensor_v2"), b += "\x93\x94";          // memo 2, 3, 4
  b += "((";
  sstr("storage"), sstr("torch"), sstr("FloatStorage"), b += "\x93\x94";      // memo 5, 6, 7, 8
  sstr("0"), sstr("cpu");                                                     // memo 9, 10
  b += std::string("\x8a\x01\x03", 3) + "t\x94Q";                            // numel 3 as LONG1; memo 11
  b += std::string("K\x00", 2) + "K\x03\x85\x94K\x01\x85\x94\x89";         // offset, (3,), (1,), False
  sstr("collections"), sstr("OrderedDict"), b += "\x93\x94)R\x94t\x94R\x94s.";
  TempDir dir;
  const fs::path p = dir.path() / "p4.pt";
  write_zip(p, {{"x/data.pkl", b}, {"x/data/0", raw_bytes(std::vector<float>{1, 2, 3})}});
  auto c = Checkpoint::open_file(p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_NE(c->find("w"), nullptr);
  EXPECT_EQ(floats(*c->find("w")), (std::vector<float>{1, 2, 3}));
}

TEST(TorchStateDict, OpenFileStillReadsSafetensors) {
  TempDir dir;
  const fs::path p = dir.path() / "weights.bin";  // the content decides, not the extension
  ASSERT_TRUE(write_safetensors(p, {tensor_f32("x", {2}, {3, 4})}).ok());
  auto c = Checkpoint::open_file(p);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->description(), p.string());
  ASSERT_NE(c->find("x"), nullptr);
  EXPECT_EQ(floats(*c->find("x")), (std::vector<float>{3, 4}));
}

// ---- errors ----

TEST(TorchStateDict, RefusesAnyOtherGlobal) {
  Pickle p;
  p.raw("\x80\x02").global("posix", "system").put(0).str("touch /tmp/pwned").op('\x85').op('R').op('.');
  const std::string msg = open_error({{"archive/data.pkl", p.b}});
  EXPECT_NE(msg.find("'posix.system'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not execute pickled code"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists("/tmp/pwned"));
  // A storage class outside the list, and a global reached through STACK_GLOBAL.
  const std::string complex = state_dict([](Pickle& q) { tensor_entry(q, "c", "ComplexFloatStorage", "0", 1, 0, {1}, {1}); });
  EXPECT_NE(open_error({{"archive/data.pkl", complex}}).find("'torch.ComplexFloatStorage'"), std::string::npos);
  std::string sg = "\x80\x04\x8c\x08" "builtins" "\x8c\x04" "eval" "\x93.";
  EXPECT_NE(open_error({{"archive/data.pkl", sg}}).find("'builtins.eval'"), std::string::npos);
}

TEST(TorchStateDict, RefusesNonContiguousTensors) {
  const std::string pickle = state_dict([](Pickle& p) { tensor_entry(p, "weight", "FloatStorage", "0", 6, 0, {2, 3}, {1, 2}); });
  const std::string msg = open_error({{"archive/data.pkl", pickle}, {"archive/data/0", std::string(24, '\0')}});
  EXPECT_NE(msg.find("'weight' is not contiguous"), std::string::npos) << msg;
}

TEST(TorchStateDict, RefusesTensorsOutsideTheirStorageOrRecord) {
  const std::string six = state_dict([](Pickle& p) { tensor_entry(p, "weight", "FloatStorage", "0", 6, 0, {2, 3}, {3, 1}); });
  std::string msg = open_error({{"archive/data.pkl", six}, {"archive/data/0", std::string(20, '\0')}});
  EXPECT_NE(msg.find("holds 20 bytes"), std::string::npos) << msg;
  const std::string offset = state_dict([](Pickle& p) { tensor_entry(p, "weight", "FloatStorage", "0", 6, 2, {2, 3}, {3, 1}); });
  msg = open_error({{"archive/data.pkl", offset}, {"archive/data/0", std::string(24, '\0')}});
  EXPECT_NE(msg.find("'weight': storage_offset 2 + 6 elements exceeds"), std::string::npos) << msg;
  msg = open_error({{"archive/data.pkl", six}, {"archive/data/1", std::string(24, '\0')}});
  EXPECT_NE(msg.find("'archive/data/0', which the archive lacks"), std::string::npos) << msg;
}

TEST(TorchStateDict, RefusesArchivesWithoutAPickleOrBigEndian) {
  EXPECT_NE(open_error({{"archive/data/0", "abcd"}}).find("without a data.pkl"), std::string::npos);
  Records big = linear_records(linear_pickle());
  big[1].second = "big";
  EXPECT_NE(open_error(big).find("little-endian"), std::string::npos);
  Records two = linear_records(linear_pickle());
  two.push_back({"other/data.pkl", linear_pickle()});
  EXPECT_NE(open_error(two).find("several pickles"), std::string::npos);
}

TEST(TorchStateDict, EveryTruncationOfThePickleIsAnError) {
  const std::string pickle = linear_pickle();
  TempDir dir;
  for (std::size_t n = 0; n < pickle.size(); ++n) {
    Records r = linear_records(pickle.substr(0, n));
    write_zip(dir.path() / "t.pt", r);
    const std::string image = read_file(dir.path() / "t.pt");
    auto f = parse_torch_state_dict(reinterpret_cast<const std::byte*>(image.data()), image.size(), "t.pt");
    ASSERT_FALSE(f.ok()) << n;
    EXPECT_EQ(f.error().code, ErrorCode::kLoadFailed);
    EXPECT_EQ(f.error().message.rfind("t.pt: ", 0), 0u) << f.error().message;
  }
}

TEST(TorchStateDict, DamagedPicklesAreErrorsNeverCrashes) {
  const auto message = [](const std::string& pickle) { return open_error({{"archive/data.pkl", pickle}}); };
  EXPECT_NE(message("\x80\x02h\x05.").find("memo index 5 was never stored"), std::string::npos);
  EXPECT_NE(message("\x80\x02R.").find("stack underflow"), std::string::npos);
  EXPECT_NE(message("\x80\x02K\x01t.").find("no MARK"), std::string::npos);
  EXPECT_NE(message("\x80\x02(0.").find("stack underflow"), std::string::npos);  // POP below the MARK
  EXPECT_NE(message("\x80\x02K\x01.").find("not a state dict"), std::string::npos);
  EXPECT_NE(message("\x80\x02}X\x01\0\0\0xK\x01s."s).find("'x' is an int, not a tensor"), std::string::npos);
  EXPECT_NE(message("\x80\x02X\xff\xff\xff\x7f" "ab.").find("truncated"), std::string::npos);
  EXPECT_NE(message("\x80\x02\x81.").find("unsupported pickle opcode 0x81"), std::string::npos);
  EXPECT_NE(message("\x80\x02\x8a\x09" + std::string(9, '\1') + ".").find("wider than 64 bits"), std::string::npos);
  EXPECT_NE(message("\x80\x02K\x01K\x02R.").find("REDUCE calls an int"), std::string::npos);
  // Every single-byte change of a valid pickle parses or fails cleanly (run under the sanitizers in CI).
  const std::string good = linear_pickle();
  TempDir dir;
  for (std::size_t i = 0; i < good.size(); ++i)
    for (int v : {0x00, 0x28, 0x2e, 0x51, 0x52, 0x68, 0x71, 0x74, 0x75, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      write_zip(dir.path() / "m.pt", linear_records(bad));
      const std::string image = read_file(dir.path() / "m.pt");
      auto f = parse_torch_state_dict(reinterpret_cast<const std::byte*>(image.data()), image.size(), "m.pt");
      if (!f.ok()) EXPECT_EQ(f.error().code, ErrorCode::kLoadFailed);
    }
}

TEST(TorchStateDict, OpenFileNamesTheFileOfEveryOtherFailure) {
  TempDir dir;
  const fs::path text = dir.path() / "notes.pt";
  std::ofstream(text) << "hello, not a checkpoint";
  auto c = Checkpoint::open_file(text);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(c.error().message.find(text.string()), std::string::npos);

  const fs::path legacy = dir.path() / "legacy.pt";
  std::ofstream(legacy, std::ios::binary) << std::string("\x80\x02\x8a\x0a", 4);
  c = Checkpoint::open_file(legacy);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("bare pickle"), std::string::npos) << c.error().message;

  c = Checkpoint::open_file(dir.path() / "missing.pt");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(c.error().message.find("missing.pt"), std::string::npos);

  const fs::path cut = dir.path() / "cut.pt";  // a zip cut short: the central directory is gone
  write_zip(cut, linear_records(linear_pickle()));
  fs::resize_file(cut, fs::file_size(cut) / 2);
  c = Checkpoint::open_file(cut);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, ErrorCode::kLoadFailed);
  EXPECT_NE(c.error().message.find("cut.pt"), std::string::npos);
}

}  // namespace
}  // namespace fathom::formats
