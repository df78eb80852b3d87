// The decoder-LLM core against a plain double-precision re-implementation written in this test (full
// recomputation, no cache) on a Qwen2-layout checkpoint built here: q/k/v biases, no q/k norm, untied
// lm_head, grouped-query attention, yarn rotary scaling, bfloat16 tensors (converted to f32 at load), a
// Hugging Face directory (config.json, generation_config.json, model.safetensors with "model." names).
// Prefill and every decode step must give the reference's logits. Also: rotary scaling tables.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "base/half.h"
#include "formats/safetensors_writer.h"
#include "models/decoder/decoder_lm.h"

namespace fathom::models::decoder {
namespace {

constexpr int kH = 32, kHeads = 4, kKv = 2, kHd = 8, kI = 48, kLayers = 2, kV = 64;

struct Tensors {
  std::map<std::string, std::vector<float>> values;  // bf16-rounded
  std::vector<formats::TensorToWrite> files;
  std::mt19937 rng{7};
  const std::vector<float>& add(const std::string& name, std::vector<int64_t> shape, float scale, float offset = 0.0f) {
    std::normal_distribution<float> n(0.0f, scale);
    int64_t count = 1;
    for (auto d : shape) count *= d;
    std::vector<float> v(static_cast<std::size_t>(count));
    for (auto& x : v) x = bf16_to_f32(f32_to_bf16(offset + n(rng)));
    files.push_back(formats::tensor_bf16(name, shape, v));
    return values[name] = v;
  }
};

// y[n] = sum_k W[n, k] x[k] (+ b[n]).
std::vector<double> matvec(const std::vector<float>& w, const std::vector<double>& x, int out, const std::vector<float>* b) {
  std::vector<double> y(static_cast<std::size_t>(out));
  const std::size_t in = x.size();
  for (int n = 0; n < out; ++n) {
    double s = b ? (*b)[static_cast<std::size_t>(n)] : 0.0;
    for (std::size_t k = 0; k < in; ++k) s += double(w[n * in + k]) * x[k];
    y[static_cast<std::size_t>(n)] = s;
  }
  return y;
}

std::vector<double> rms(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = w[i] * x[i] * inv;
  return y;
}

// Last-position logits of `ids` by full recomputation.
std::vector<double> reference_logits(Tensors& t, const std::vector<int32_t>& ids, const RopeTables& rope, double eps) {
  const std::size_t T = ids.size();
  std::vector<std::vector<double>> h(T);
  for (std::size_t i = 0; i < T; ++i)
    h[i].assign(t.values["model.embed_tokens.weight"].begin() + ids[i] * kH,
                t.values["model.embed_tokens.weight"].begin() + (ids[i] + 1) * kH);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(T), k(T), v(T);
    for (std::size_t i = 0; i < T; ++i) {
      auto x = rms(h[i], t.values[p + "input_layernorm.weight"], eps);
      q[i] = matvec(t.values[p + "self_attn.q_proj.weight"], x, kHeads * kHd, &t.values[p + "self_attn.q_proj.bias"]);
      k[i] = matvec(t.values[p + "self_attn.k_proj.weight"], x, kKv * kHd, &t.values[p + "self_attn.k_proj.bias"]);
      v[i] = matvec(t.values[p + "self_attn.v_proj.weight"], x, kKv * kHd, &t.values[p + "self_attn.v_proj.bias"]);
      for (auto* m : {&q[i], &k[i]})
        for (std::size_t hd = 0; hd < m->size() / kHd; ++hd)
          for (int j = 0; j < kHd / 2; ++j) {
            const double a = double(i) * rope.inv_freq[j];
            const double c = std::cos(a) * rope.attention_scaling, s = std::sin(a) * rope.attention_scaling;
            double& x1 = (*m)[hd * kHd + j];
            double& x2 = (*m)[hd * kHd + j + kHd / 2];
            const double y1 = x1 * c - x2 * s, y2 = x2 * c + x1 * s;
            x1 = y1, x2 = y2;
          }
    }
    for (std::size_t i = 0; i < T; ++i) {
      std::vector<double> attn(kHeads * kHd, 0.0);
      for (int hh = 0; hh < kHeads; ++hh) {
        const int g = hh / (kHeads / kKv);
        std::vector<double> sc(i + 1);
        double mx = -1e300, sum = 0;
        for (std::size_t j = 0; j <= i; ++j) {
          double d = 0;
          for (int e = 0; e < kHd; ++e) d += q[i][hh * kHd + e] * k[j][g * kHd + e];
          sc[j] = d / std::sqrt(double(kHd));
          mx = std::max(mx, sc[j]);
        }
        for (auto& s : sc) sum += (s = std::exp(s - mx));
        for (std::size_t j = 0; j <= i; ++j)
          for (int e = 0; e < kHd; ++e) attn[hh * kHd + e] += sc[j] / sum * v[j][g * kHd + e];
      }
      auto o = matvec(t.values[p + "self_attn.o_proj.weight"], attn, kH, nullptr);
      for (int e = 0; e < kH; ++e) h[i][e] += o[e];
      auto x = rms(h[i], t.values[p + "post_attention_layernorm.weight"], eps);
      auto gate = matvec(t.values[p + "mlp.gate_proj.weight"], x, kI, nullptr);
      auto up = matvec(t.values[p + "mlp.up_proj.weight"], x, kI, nullptr);
      for (int e = 0; e < kI; ++e) gate[e] = gate[e] / (1.0 + std::exp(-gate[e])) * up[e];
      auto down = matvec(t.values[p + "mlp.down_proj.weight"], gate, kH, nullptr);
      for (int e = 0; e < kH; ++e) h[i][e] += down[e];
    }
  }
  return matvec(t.values["lm_head.weight"], rms(h[T - 1], t.values["model.norm.weight"], eps), kV, nullptr);
}

std::filesystem::path write_qwen2(Tensors& t) {
  const auto dir = std::filesystem::temp_directory_path() / ("fathom-qwen2-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  t.add("model.embed_tokens.weight", {kV, kH}, 1.0f);
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    t.add(p + "input_layernorm.weight", {kH}, 0.2f, 1.0f);
    t.add(p + "post_attention_layernorm.weight", {kH}, 0.2f, 1.0f);
    t.add(p + "self_attn.q_proj.weight", {kHeads * kHd, kH}, 0.3f);
    t.add(p + "self_attn.k_proj.weight", {kKv * kHd, kH}, 0.3f);
    t.add(p + "self_attn.v_proj.weight", {kKv * kHd, kH}, 0.3f);
    t.add(p + "self_attn.q_proj.bias", {kHeads * kHd}, 0.3f);
    t.add(p + "self_attn.k_proj.bias", {kKv * kHd}, 0.3f);
    t.add(p + "self_attn.v_proj.bias", {kKv * kHd}, 0.3f);
    t.add(p + "self_attn.o_proj.weight", {kH, kHeads * kHd}, 0.3f);
    t.add(p + "mlp.gate_proj.weight", {kI, kH}, 0.3f);
    t.add(p + "mlp.up_proj.weight", {kI, kH}, 0.3f);
    t.add(p + "mlp.down_proj.weight", {kH, kI}, 0.2f);
  }
  t.add("model.norm.weight", {kH}, 0.2f, 1.0f);
  t.add("lm_head.weight", {kV, kH}, 0.5f);
  EXPECT_TRUE(formats::write_safetensors(dir / "model.safetensors", t.files).ok());
  nlohmann::json c = {{"architectures", {"Qwen2ForCausalLM"}}, {"model_type", "qwen2"}, {"hidden_size", kH},
                      {"num_hidden_layers", kLayers}, {"num_attention_heads", kHeads}, {"num_key_value_heads", kKv},
                      {"intermediate_size", kI}, {"vocab_size", kV}, {"max_position_embeddings", 256},
                      {"rms_norm_eps", 1e-6}, {"tie_word_embeddings", false}, {"hidden_act", "silu"},
                      {"rope_theta", 10000.0}, {"use_sliding_window", false}, {"eos_token_id", 63},
                      {"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64}}},
                      {"torch_dtype", "bfloat16"}};
  std::ofstream(dir / "config.json") << c.dump();
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": [61, 62]})";
  return dir;
}

TEST(DecoderReference, Qwen2Bf16CheckpointMatchesPlainReference) {
  Tensors t;
  const auto dir = write_qwen2(t);
  DecoderLoadOptions o;
  o.kv_block_size = 4;
  o.kv_cache_bytes = 1 << 16;
  auto lm = DecoderLm::load_directory(dir, o);
  ASSERT_TRUE(lm.ok()) << lm.error().message;
  DecoderLm& m = *lm.value();
  EXPECT_TRUE(m.config().attention_bias);
  EXPECT_FALSE(m.config().qk_norm);
  EXPECT_EQ(m.config().rope.type, "yarn");
  EXPECT_EQ(m.config().eos_token_ids, (std::vector<int>{61, 62}));  // generation_config.json wins
  auto rope = rope_tables(m.config().rope, kHd, 256);
  ASSERT_TRUE(rope.ok());
  std::vector<int32_t> ids = {3, 17, 42, 5, 9, 33, 1};
  const int seq = m.add_sequence();
  auto out = m.forward({SequenceInput{seq, {InputSpan::tokens(ids)}}});
  for (int step = 0; step < 8; ++step) {
    ASSERT_TRUE(out.ok()) << out.error().message;
    const auto ref = reference_logits(t, ids, rope.value(), 1e-6);
    double worst = 0;
    for (int i = 0; i < kV; ++i) worst = std::max(worst, std::fabs(out.value().logits[static_cast<std::size_t>(i)] - ref[i]));
    EXPECT_LT(worst, 2e-4) << "step " << step << " (" << ids.size() << " positions)";
    const int32_t next = static_cast<int32_t>(std::max_element(ref.begin(), ref.end()) - ref.begin());
    ids.push_back(next);
    out = m.forward({SequenceInput{seq, {InputSpan::tokens(std::span<const int32_t>(&ids.back(), 1))}}});
  }
  std::filesystem::remove_all(dir);
}

TEST(DecoderReference, RopeScalingTables) {
  RopeConfig base;
  base.theta = 10000.0;
  auto plain = rope_tables(base, 64, 4096);
  ASSERT_TRUE(plain.ok());
  EXPECT_FLOAT_EQ(plain.value().inv_freq[0], 1.0f);
  EXPECT_NEAR(plain.value().inv_freq[16], 1.0 / std::pow(10000.0, 0.5), 1e-7);
  EXPECT_EQ(plain.value().attention_scaling, 1.0f);
  RopeConfig linear = base;
  linear.type = "linear";
  linear.factor = 2.0;
  EXPECT_FLOAT_EQ(rope_tables(linear, 64, 4096).value().inv_freq[5], plain.value().inv_freq[5] / 2.0f);
  RopeConfig yarn = base;
  yarn.type = "yarn";
  yarn.factor = 4.0;
  yarn.original_max_position_embeddings = 32768;
  auto y = rope_tables(yarn, 64, 131072);
  ASSERT_TRUE(y.ok());
  EXPECT_NEAR(y.value().attention_scaling, 0.1 * std::log(4.0) + 1.0, 1e-6);
  EXPECT_FLOAT_EQ(y.value().inv_freq[0], plain.value().inv_freq[0]);             // high frequencies extrapolate
  EXPECT_FLOAT_EQ(y.value().inv_freq[31], plain.value().inv_freq[31] / 4.0f);    // low frequencies interpolate
  RopeConfig llama3 = base;
  llama3.type = "llama3";
  llama3.factor = 8.0;
  llama3.original_max_position_embeddings = 8192;
  auto l3 = rope_tables(llama3, 64, 131072);
  ASSERT_TRUE(l3.ok());
  EXPECT_FLOAT_EQ(l3.value().inv_freq[0], plain.value().inv_freq[0]);
  EXPECT_FLOAT_EQ(l3.value().inv_freq[31], plain.value().inv_freq[31] / 8.0f);
}

TEST(DecoderReference, ConfigRejectsWhatItCannotCompute) {
  nlohmann::json c = {{"model_type", "qwen3"}, {"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 4},
                      {"num_key_value_heads", 3}, {"intermediate_size", 8}, {"vocab_size", 10}};
  auto r = parse_decoder_config(c, "config.json");
  ASSERT_FALSE(r.ok());  // 4 heads are not a multiple of 3 kv heads
  EXPECT_NE(r.error().message.find("num_key_value_heads"), std::string::npos);
  c["num_key_value_heads"] = 2;
  EXPECT_TRUE(parse_decoder_config(c, "config.json").ok());
  c["layer_types"] = {"sliding_attention"};
  auto s = parse_decoder_config(c, "config.json");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnsupported);
  c.erase("layer_types");
  c["rope_parameters"] = {{"rope_type", "dynamic"}, {"factor", 2.0}};
  auto d = parse_decoder_config(c, "config.json");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, ErrorCode::kUnsupported);
  c["model_type"] = "llama";
  EXPECT_FALSE(parse_decoder_config(c, "config.json").ok());
}

}  // namespace
}  // namespace fathom::models::decoder
