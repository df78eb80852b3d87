// CPU embedding throughput of a bge-base-sized BERT (12 layers x 768, 12 heads, intermediate 3072,
// vocab 30522) with random weights, loaded through the real loader from a temporary model directory
// (f16 safetensors, so load-time conversion is exercised too), on a seeded mix of sequence lengths
// (mostly 16-128 tokens, a tail to 512). Prints tokens/s beside the sgemm GFLOP/s of this machine.
//
// Usage: cpu_embed_bench [--sequences N] [--batch-tokens T] [--layers L] [--keep DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cpu/gemm.h"
#include "backends/cpu/parallel.h"
#include "formats/safetensors_writer.h"
#include "models/registry.h"

namespace fs = std::filesystem;
using namespace fathom;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

double sgemm_gflops(bool portable, int m, int n, int k, int reps) {
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> a(static_cast<size_t>(m) * k), b(static_cast<size_t>(n) * k), c(static_cast<size_t>(m) * n);
  for (auto& x : a) x = d(gen);
  for (auto& x : b) x = d(gen);
  auto run = [&] {
    (portable ? cpu::sgemm_portable : cpu::sgemm)(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c.data(), n);
  };
  run();  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < reps; ++i) run();
  return 2.0 * m * n * k * reps / seconds_since(t0) / 1e9;
}

void write_model(const fs::path& dir, int layers) {
  const int h = 768, inter = 3072, vocab = 30522, max_pos = 512;
  fs::create_directories(dir);
  nlohmann::json config = {{"architectures", {"BertModel"}}, {"model_type", "bert"}, {"hidden_size", h},
                           {"num_hidden_layers", layers}, {"num_attention_heads", 12}, {"intermediate_size", inter},
                           {"vocab_size", vocab}, {"max_position_embeddings", max_pos}, {"type_vocab_size", 2},
                           {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-12}, {"pad_token_id", 0}};
  std::ofstream(dir / "config.json") << config.dump(2);
  // A minimal WordPiece tokenizer: the benchmark feeds token ids directly.
  nlohmann::json vocab_map = {{"[PAD]", 0}, {"[UNK]", 100}, {"[CLS]", 101}, {"[SEP]", 102}, {"hello", 7592}};
  nlohmann::json tok = {{"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", nlohmann::json::array()},
                        {"normalizer", nullptr}, {"pre_tokenizer", {{"type", "BertPreTokenizer"}}}, {"post_processor", nullptr},
                        {"decoder", nullptr},
                        {"model", {{"type", "WordPiece"}, {"unk_token", "[UNK]"}, {"continuing_subword_prefix", "##"},
                                   {"max_input_chars_per_word", 100}, {"vocab", vocab_map}}}};
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  auto rnd = [&](std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(gen);
    return v;
  };
  auto ones = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n), 1.0f); };
  std::vector<formats::TensorToWrite> t;
  t.push_back(formats::tensor_f16("embeddings.word_embeddings.weight", {vocab, h}, rnd({vocab, h})));
  t.push_back(formats::tensor_f16("embeddings.position_embeddings.weight", {max_pos, h}, rnd({max_pos, h})));
  t.push_back(formats::tensor_f16("embeddings.token_type_embeddings.weight", {2, h}, rnd({2, h})));
  t.push_back(formats::tensor_f16("embeddings.LayerNorm.weight", {h}, ones(h)));
  t.push_back(formats::tensor_f16("embeddings.LayerNorm.bias", {h}, rnd({h})));
  for (int l = 0; l < layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* n : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      t.push_back(formats::tensor_f16(p + n + ".weight", {h, h}, rnd({h, h})));
      t.push_back(formats::tensor_f16(p + n + ".bias", {h}, rnd({h})));
    }
    t.push_back(formats::tensor_f16(p + "intermediate.dense.weight", {inter, h}, rnd({inter, h})));
    t.push_back(formats::tensor_f16(p + "intermediate.dense.bias", {inter}, rnd({inter})));
    t.push_back(formats::tensor_f16(p + "output.dense.weight", {h, inter}, rnd({h, inter})));
    t.push_back(formats::tensor_f16(p + "output.dense.bias", {h}, rnd({h})));
    for (const char* n : {"attention.output.LayerNorm", "output.LayerNorm"}) {
      t.push_back(formats::tensor_f16(p + n + ".weight", {h}, ones(h)));
      t.push_back(formats::tensor_f16(p + n + ".bias", {h}, rnd({h})));
    }
  }
  Status s = formats::write_safetensors(dir / "model.safetensors", t);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.error().message.c_str());
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int sequences = 96, batch_tokens = 4096, layers = 12;
  std::string keep;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--sequences") sequences = std::atoi(argv[i + 1]);
    else if (a == "--batch-tokens") batch_tokens = std::atoi(argv[i + 1]);
    else if (a == "--layers") layers = std::atoi(argv[i + 1]);
    else if (a == "--keep") keep = argv[i + 1];
  }
  std::printf("fathom cpu_embed_bench: %d CPU threads, GEMM via %s\n", cpu::num_threads(),
              cpu::sgemm_uses_blas() ? "OpenBLAS" : "portable fallback");

  // 1. sgemm on the shapes the model runs (x[N, 768] * W[3072, 768]^T).
  std::printf("\n%-40s %10s\n", "sgemm (M x N x K)", "GFLOP/s");
  for (int m : {128, 512, 2048}) {
    char label[64];
    std::snprintf(label, sizeof(label), "sgemm %d x 3072 x 768", m);
    std::printf("%-40s %10.1f\n", label, sgemm_gflops(false, m, 3072, 768, m >= 2048 ? 3 : 10));
  }
  std::printf("%-40s %10.1f\n", "portable sgemm 512 x 3072 x 768", sgemm_gflops(true, 512, 3072, 768, 2));

  // 2. The model.
  const fs::path dir = keep.empty() ? fs::temp_directory_path() / ("fathom_bench_bge_base_" + std::to_string(::getpid())) : fs::path(keep);
  auto t0 = Clock::now();
  if (!fs::exists(dir / "model.safetensors")) write_model(dir, layers);
  const double write_s = seconds_since(t0);
  t0 = Clock::now();
  auto loaded = models::Registry::global().load(dir, models::LoadOptions{});
  if (!loaded.ok()) {
    std::fprintf(stderr, "load failed: %s\n", loaded.error().message.c_str());
    return 1;
  }
  const double load_s = seconds_since(t0);
  models::Embedder* e = (*loaded)->as_embedder();
  std::printf("\nmodel: bge-base-sized BERT, %d layers; write %.1f s, load (f16 -> f32) %.1f s, %.0f MiB\n", layers, write_s,
              load_s, static_cast<double>((*loaded)->memory_bytes()) / (1 << 20));

  // Seeded length mix: 85% 16-128, 12% 129-256, 3% 257-512.
  std::mt19937 gen(42);
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<int32_t> tok(1000, 29000);
  std::vector<std::vector<int32_t>> seqs;
  long total_tokens = 0;
  for (int i = 0; i < sequences; ++i) {
    double r = u(gen);
    int len = r < 0.85 ? std::uniform_int_distribution<int>(16, 128)(gen)
                       : r < 0.97 ? std::uniform_int_distribution<int>(129, 256)(gen)
                                  : std::uniform_int_distribution<int>(257, 512)(gen);
    std::vector<int32_t> s(static_cast<size_t>(len));
    for (auto& x : s) x = tok(gen);
    s.front() = 101;
    s.back() = 102;
    total_tokens += len;
    seqs.push_back(std::move(s));
  }
  // Batches as the engine forms them: consecutive sequences under a token budget.
  std::vector<std::vector<std::vector<int32_t>>> batches(1);
  long in_batch = 0;
  for (auto& s : seqs) {
    if (in_batch + static_cast<long>(s.size()) > batch_tokens && !batches.back().empty()) {
      batches.emplace_back();
      in_batch = 0;
    }
    in_batch += static_cast<long>(s.size());
    batches.back().push_back(s);
  }
  (void)e->embed({seqs[0]});  // warm-up (workspace growth, thread pools)
  t0 = Clock::now();
  for (const auto& b : batches) {
    auto r = e->embed(b);
    if (!r.ok()) {
      std::fprintf(stderr, "embed failed: %s\n", r.error().message.c_str());
      return 1;
    }
  }
  const double secs = seconds_since(t0);
  std::printf("\n%-40s %10s\n", "embedding", "value");
  std::printf("%-40s %10d\n", "sequences", sequences);
  std::printf("%-40s %10ld\n", "tokens", total_tokens);
  std::printf("%-40s %10.1f\n", "mean tokens / sequence", static_cast<double>(total_tokens) / sequences);
  std::printf("%-40s %10zu\n", "batches (token budget)", batches.size());
  std::printf("%-40s %10.2f\n", "seconds", secs);
  std::printf("%-40s %10.0f\n", "tokens / s", total_tokens / secs);
  std::printf("%-40s %10.1f\n", "sequences / s", sequences / secs);
  // Encoder FLOPs: 24 H^2 + 4 H L per token per layer (L = the token's sequence length).
  double flops = 0;
  for (const auto& s : seqs) flops += static_cast<double>(s.size()) * layers * (24.0 * 768 * 768 + 4.0 * 768 * s.size());
  std::printf("%-40s %10.1f\n", "achieved GFLOP/s (encoder)", flops / secs / 1e9);
  std::printf("%-40s %10.0f\n", "peak memory of the model (MiB)", static_cast<double>((*loaded)->memory_bytes()) / (1 << 20));
  if (keep.empty()) fs::remove_all(dir);
  return 0;
}
