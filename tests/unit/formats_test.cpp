#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include "base/half.h"
#include "formats/json_file.h"
#include "formats/safetensors.h"
#include "formats/safetensors_writer.h"
#include "formats/sentence_transformers.h"
#include "support/paths.h"
#include "support/temp_dir.h"

namespace fathom::formats {
namespace {
namespace fs = std::filesystem;

using testing::TempDir;

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}
std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// ---- half conversions ----

TEST(Half, RoundTripsEveryF16AndBf16Value) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const uint16_t v = static_cast<uint16_t>(h);
    float f = f16_to_f32(v);
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(f))));
    } else {
      ASSERT_EQ(f32_to_f16(f), v) << std::hex << h;
    }
    float b = bf16_to_f32(v);
    if (!std::isnan(b)) ASSERT_EQ(f32_to_bf16(b), v) << std::hex << h;
  }
}

TEST(Half, RoundsToNearestEven) {
  EXPECT_EQ(f16_to_f32(f32_to_f16(1.0f)), 1.0f);
  EXPECT_EQ(f16_to_f32(0x3c01), 1.0f + 1.0f / 1024);
  // Exactly half-way between 1 and 1+2^-10: ties to even (1.0).
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);
  // Half-way between 1+2^-10 and 1+2^-9: ties to even (1+2^-9 = 0x3c02).
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048 + 1.0f / 65536), 0x3c01);  // just above half-way rounds up
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7c00);                             // overflows to inf
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.0f, -24));                // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);                // tie below: to even (0)
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -26)), 0x0001);
  EXPECT_EQ(f32_to_bf16(1.0f + 1.0f / 256), 0x3f80);                   // tie to even
  EXPECT_EQ(f32_to_bf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
}

// ---- safetensors ----

std::vector<TensorToWrite> sample_tensors() {
  return {tensor_f32("a.weight", {2, 3}, {1, 2, 3, 4, 5, 6}), tensor_bf16("b", {4}, {1.5f, -2, 0, 8}),
          tensor_f16("c", {}, {0.25f})};
}

TEST(Safetensors, ParsesWhatWasWritten) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.path() / "model.safetensors", sample_tensors()).ok());
  auto f = SafetensorsFile::open(dir.path() / "model.safetensors");
  ASSERT_TRUE(f.ok()) << f.error().message;
  const TensorInfo* a = (*f)->find("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  EXPECT_EQ(a->shape_string(), "[2, 3]");
  EXPECT_EQ(static_cast<const float*>(a->data)[5], 6.0f);
  const TensorInfo* b = (*f)->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_EQ(bf16_to_f32(static_cast<const uint16_t*>(b->data)[1]), -2.0f);
  const TensorInfo* c = (*f)->find("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->numel(), 1);
  EXPECT_EQ((*f)->find("missing"), nullptr);
  auto ckpt = Checkpoint::open(dir.path());
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->names().size(), 3u);
  EXPECT_EQ(ckpt->file_of("b"), dir.path() / "model.safetensors");
}

// Writes `bytes` as model.safetensors and expects a load error mentioning every needle.
void expect_damaged(const std::string& bytes, std::vector<std::string> needles) {
  TempDir dir;
  write_text(dir.path() / "model.safetensors", bytes);
  auto f = SafetensorsFile::open(dir.path() / "model.safetensors");
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().code, ErrorCode::kLoadFailed);
  needles.push_back("model.safetensors");
  for (const auto& n : needles) EXPECT_NE(f.error().message.find(n), std::string::npos) << f.error().message;
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t len = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(len >> (8 * i));
  return out + json + data;
}

TEST(Safetensors, DamagedFilesAreErrorsNamingFileAndTensor) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.path() / "good.safetensors", sample_tensors()).ok());
  const std::string good = read_bytes(dir.path() / "good.safetensors");
  expect_damaged("", {"shorter"});
  expect_damaged(good.substr(0, 5), {"shorter"});
  expect_damaged(good.substr(0, good.size() - 3), {"tensor", "outside the data area"});  // truncated data
  expect_damaged(good.substr(0, 40), {"header length"});                    // truncated header
  expect_damaged(with_header("{not json", ""), {"JSON"});
  expect_damaged(with_header(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", std::string(8, 'x')),
                 {"tensor 'w'", "needs 8"});
  expect_damaged(with_header(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,2]}})", std::string(2, 'x')),
                 {"tensor 'w'", "unknown dtype"});
  expect_damaged(with_header(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,100]}})", std::string(8, 'x')),
                 {"tensor 'w'", "outside"});
  expect_damaged(with_header(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, 'x')),
                 {"tensor 'w'", "shape"});
  expect_damaged(with_header(R"({"w":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, 'x')), {"tensor 'w'"});
  expect_damaged(with_header(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "xxxx"),
                 {"tensor 'w'"});
  std::string huge = good;
  huge[7] = 0x7f;  // absurd header length
  expect_damaged(huge, {"header length"});
}

TEST(Safetensors, ShardedIndexErrorsNameFileAndTensor) {
  TempDir dir;
  ASSERT_TRUE(write_safetensors(dir.path() / "s1.safetensors", {tensor_f32("x", {1}, {1})}).ok());
  ASSERT_TRUE(write_safetensors(dir.path() / "s2.safetensors", {tensor_f32("y", {1}, {2})}).ok());
  write_text(dir.path() / "model.safetensors.index.json",
             R"({"weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}})");
  auto ok = Checkpoint::open(dir.path());
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok->files().size(), 2u);
  EXPECT_EQ(static_cast<const float*>(ok->find("y")->data)[0], 2.0f);
  EXPECT_EQ(ok->file_of("y").filename(), "s2.safetensors");

  write_text(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "s1.safetensors", "z": "s2.safetensors"}})");
  auto wrong = Checkpoint::open(dir.path());
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("'z'"), std::string::npos);
  EXPECT_NE(wrong.error().message.find("s2.safetensors"), std::string::npos);

  write_text(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "s3.safetensors"}})");
  auto missing = Checkpoint::open(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("s3.safetensors"), std::string::npos);

  write_text(dir.path() / "model.safetensors.index.json", R"({"weight_map": {"x": "../s1.safetensors"}})");
  EXPECT_FALSE(Checkpoint::open(dir.path()).ok());

  fs::remove(dir.path() / "model.safetensors.index.json");
  write_text(dir.path() / "pytorch_model.bin", "x");
  auto none = Checkpoint::open(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("pytorch_model.bin"), std::string::npos);
}

TEST(Safetensors, OpensTheShardedFixture) {
  auto c = Checkpoint::open(testing::fixture("models/bert-mlm-sharded-lasttoken"));
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->files().size(), 2u);
  const TensorInfo* w = c->find("bert.embeddings.word_embeddings.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->dtype, DType::kF16);
  EXPECT_EQ(w->shape_string(), "[30522, 32]");
}

// ---- sentence-transformers ----

TEST(SentenceTransformers, PoolingBothStyles) {
  using nlohmann::json;
  const fs::path f = "1_Pooling/config.json";
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode", "cls"}}, f).value(), PoolingKind::kCls);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode", "lasttoken"}}, f).value(), PoolingKind::kLastToken);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode", "max"}}, f).value(), PoolingKind::kMax);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode", "mean"}}, f).value(), PoolingKind::kMean);
  EXPECT_EQ(parse_pooling_config(json{{"word_embedding_dimension", 8}}, f).value(), PoolingKind::kMean);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode_cls_token", true}, {"pooling_mode_mean_tokens", false}}, f).value(),
            PoolingKind::kCls);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode_max_tokens", true}}, f).value(), PoolingKind::kMax);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode_lasttoken", true}}, f).value(), PoolingKind::kLastToken);
  EXPECT_EQ(parse_pooling_config(json{{"pooling_mode_mean_tokens", true}}, f).value(), PoolingKind::kMean);
  auto two = parse_pooling_config(json{{"pooling_mode_cls_token", true}, {"pooling_mode_mean_tokens", true}}, f);
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.error().message.find("pooling_mode_cls_token"), std::string::npos);
  auto sqrt = parse_pooling_config(json{{"pooling_mode_mean_sqrt_len_tokens", true}}, f);
  ASSERT_FALSE(sqrt.ok());
  EXPECT_EQ(sqrt.error().code, ErrorCode::kUnsupported);
  auto weird = parse_pooling_config(json{{"pooling_mode", "weightedmean"}}, f);
  ASSERT_FALSE(weird.ok());
  EXPECT_NE(weird.error().message.find("1_Pooling/config.json"), std::string::npos);
  EXPECT_FALSE(parse_pooling_config(json{{"pooling_mode_cls_token", "yes"}}, f).ok());
}

TEST(SentenceTransformers, ReadsFixtureDirectories) {
  auto bert = read_sentence_transformers_config(testing::fixture("models/bert-mean-norm"));
  ASSERT_TRUE(bert.ok()) << bert.error().message;
  EXPECT_EQ(bert->pooling, PoolingKind::kMean);
  EXPECT_TRUE(bert->normalize);
  auto roberta = read_sentence_transformers_config(testing::fixture("models/roberta-cls"));
  ASSERT_TRUE(roberta.ok());
  EXPECT_EQ(roberta->pooling, PoolingKind::kCls);
  EXPECT_FALSE(roberta->normalize);
  auto tok = read_tokenizer_max_length(testing::fixture("models/roberta-cls"));
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->value_or(-1), 64);
}

TEST(SentenceTransformers, DirectoryEdgeCases) {
  TempDir dir;
  auto empty = read_sentence_transformers_config(dir.path());
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->pooling, PoolingKind::kMean);
  EXPECT_FALSE(empty->normalize);
  EXPECT_FALSE(empty->has_modules);

  write_text(dir.path() / "modules.json",
             R"([{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                 {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                 {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}])");
  auto missing_pool = read_sentence_transformers_config(dir.path());
  ASSERT_FALSE(missing_pool.ok());
  EXPECT_NE(missing_pool.error().message.find("1_Pooling/config.json"), std::string::npos);

  write_text(dir.path() / "1_Pooling/config.json", R"({"word_embedding_dimension": 384, "pooling_mode_cls_token": true})");
  write_text(dir.path() / "sentence_bert_config.json", R"({"max_seq_length": 256, "do_lower_case": false})");
  write_text(dir.path() / "tokenizer_config.json", R"({"model_max_length": 1000000000000000019884624838656})");
  auto cfg = read_sentence_transformers_config(dir.path());
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  EXPECT_EQ(cfg->pooling, PoolingKind::kCls);
  EXPECT_TRUE(cfg->normalize);
  EXPECT_EQ(cfg->max_seq_length.value_or(-1), 256);
  EXPECT_EQ(cfg->pooling_dimension.value_or(-1), 384);
  auto tok = read_tokenizer_max_length(dir.path());
  ASSERT_TRUE(tok.ok());
  EXPECT_FALSE(tok->has_value());  // 1e30 means "no limit"

  EXPECT_EQ(resolve_max_input_tokens(256, 512, 512), 256);
  EXPECT_EQ(resolve_max_input_tokens(std::nullopt, 128, 512), 128);
  EXPECT_EQ(resolve_max_input_tokens(1024, std::nullopt, 512), 512);
  EXPECT_EQ(resolve_max_input_tokens(std::nullopt, std::nullopt, 514 - 2), 512);

  write_text(dir.path() / "modules.json",
             R"([{"idx":0,"path":"","type":"sentence_transformers.models.Transformer"},
                 {"idx":1,"path":"2_Dense","type":"sentence_transformers.models.Dense"}])");
  auto dense = read_sentence_transformers_config(dir.path());
  ASSERT_FALSE(dense.ok());
  EXPECT_NE(dense.error().message.find("Dense"), std::string::npos);

  write_text(dir.path() / "modules.json", "{broken");
  auto broken = read_sentence_transformers_config(dir.path());
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("modules.json"), std::string::npos);
}

TEST(JsonFile, TypedAccessNamesFileAndKey) {
  nlohmann::json j = {{"hidden_size", 768}, {"name", "x"}, {"eps", 1e-12}, {"bad", "12"}, {"neg", -1}};
  EXPECT_EQ(json_positive_int(j, "hidden_size", "config.json").value(), 768);
  auto bad = json_positive_int(j, "bad", "config.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("config.json: `bad`"), std::string::npos);
  EXPECT_FALSE(json_positive_int(j, "neg", "config.json").ok());
  auto missing = json_positive_int(j, "num_hidden_layers", "config.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("num_hidden_layers"), std::string::npos);
  EXPECT_DOUBLE_EQ(json_number(j, "eps", "c").value().value(), 1e-12);
  EXPECT_FALSE(json_string(j, "absent", "c").value().has_value());
  auto nf = read_json_file("/nonexistent/config.json");
  ASSERT_FALSE(nf.ok());
  EXPECT_EQ(nf.error().code, ErrorCode::kNotFound);
}

}  // namespace
}  // namespace fathom::formats
