// GPU harness for the CUDA backend: fixture parity (`check`), throughput (`run`) and latency (`latency`).
//
//   fathom_gpu_bench check FIXTURES_MODELS_DIR
//   fathom_gpu_bench run --model DIR --dtype f16 --ids FILE [--out FILE] [--pool mean] [--batch-tokens 16384]
//                        [--max-seqs 512] [--graphs 1]
//   fathom_gpu_bench latency --model DIR --dtype f16 [--len 16] [--iters 300] [--graphs 1]
//   fathom_gpu_bench model --model DIR --dtype f16 --ids FILE [--batch-tokens 16384] [--graphs 1]   (src/models path)
//   fathom_gpu_bench model-latency --model DIR --dtype f16 [--len 16] [--iters 300] [--graphs 1]   (src/models path)
// ids FILE: int32 little-endian: count, then per sequence its length and token ids. --out writes
// count x hidden float32 (pooled, not normalised). Results print as one JSON object per line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "raw_bert.h"

using namespace fathom;
using namespace fathom::benchgpu;
using Clock = std::chrono::steady_clock;

namespace {

double cosine(const float* a, const std::vector<double>& b) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    ab += a[i] * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += b[i] * b[i];
  }
  return ab / std::sqrt(aa * bb + 1e-300);
}

std::map<std::string, std::string> parse_flags(int argc, char** argv, int first) {
  std::map<std::string, std::string> f;
  for (int i = first; i + 1 < argc; i += 2) f[argv[i]] = argv[i + 1];
  return f;
}

std::string flag(const std::map<std::string, std::string>& f, const std::string& k, const std::string& def) {
  auto it = f.find(k);
  return it == f.end() ? def : it->second;
}

DType dtype_arg(const std::string& s) {
  auto d = parse_dtype(s);
  if (!d || !is_float(*d)) throw std::runtime_error("bad dtype " + s);
  return *d;
}

int check(const std::string& models_dir) {
  const char* names[] = {"bert-mean-norm", "roberta-cls", "xlmr-bf16-max", "bert-mlm-sharded-lasttoken"};
  int failures = 0;
  for (const char* name : names) {
    std::ifstream rf(models_dir + "/" + name + ".reference.json");
    auto ref = nlohmann::json::parse(rf);
    const std::string ref_dtype = ref.value("dtype", "float32");
    const PoolMode mode = parse_pool(ref["pooling"].get<std::string>());
    const bool normalize = ref.value("normalize", false);
    std::vector<std::vector<int32_t>> seqs;
    std::vector<std::vector<double>> want;
    for (auto& c : ref["cases"]) {
      seqs.push_back(c["token_ids"].get<std::vector<int32_t>>());
      want.push_back(c["embedding"].get<std::vector<double>>());
    }
    for (DType d : {DType::kF32, DType::kF16, DType::kBF16}) {
      RawBert model(models_dir + "/" + name, d, 512, 64);
      const int H = model.config().hidden;
      auto batched_graph = model.embed(seqs, mode, normalize, true);
      auto batched_eager = model.embed(seqs, mode, normalize, false);
      double min_cos = 1.0, max_single_diff = 0.0;
      for (std::size_t i = 0; i < seqs.size(); ++i) {
        min_cos = std::min(min_cos, cosine(batched_graph.data() + i * H, want[i]));
        auto single = model.embed({seqs[i]}, mode, normalize, false);
        for (int c = 0; c < H; ++c)
          max_single_diff = std::max(max_single_diff, std::abs(static_cast<double>(single[c]) - batched_eager[i * H + c]));
      }
      // A second, different mix in the same bucket replays the captured graph.
      std::vector<std::vector<int32_t>> rev(seqs.rbegin(), seqs.rend());
      auto rev_graph = model.embed(rev, mode, normalize, true);
      auto rev_eager = model.embed(rev, mode, normalize, false);
      const bool graph_equal = batched_graph == batched_eager && rev_graph == rev_eager;
      const bool sixteen = d != DType::kF32 || ref_dtype != "float32";
      const double need = sixteen ? 0.999 : 0.99999;
      const double single_tol = d == DType::kF32 ? 1e-5 : d == DType::kF16 ? 1e-2 : 5e-2;
      const bool ok = min_cos >= need && graph_equal && max_single_diff <= single_tol;
      failures += ok ? 0 : 1;
      nlohmann::json j{{"check", name}, {"dtype", dtype_name(d)}, {"ref_dtype", ref_dtype},
                       {"cases", seqs.size()}, {"min_cosine", min_cos}, {"need", need},
                       {"batched_vs_single_max_abs", max_single_diff}, {"graph_equals_eager", graph_equal},
                       {"graphs_captured", model.graphs()}, {"pass", ok}};
      std::cout << j.dump() << std::endl;
    }
  }
  std::cout << nlohmann::json{{"check_summary", failures == 0 ? "PASS" : "FAIL"}, {"failures", failures}}.dump()
            << std::endl;
  return failures == 0 ? 0 : 1;
}

std::vector<std::vector<int32_t>> read_ids(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  int32_t n = 0;
  f.read(reinterpret_cast<char*>(&n), 4);
  std::vector<std::vector<int32_t>> seqs(n);
  for (auto& s : seqs) {
    int32_t len = 0;
    f.read(reinterpret_cast<char*>(&len), 4);
    s.resize(len);
    f.read(reinterpret_cast<char*>(s.data()), 4 * static_cast<std::streamsize>(len));
  }
  return seqs;
}

int run(const std::map<std::string, std::string>& f) {
  const DType d = dtype_arg(flag(f, "--dtype", "f16"));
  const int budget = std::stoi(flag(f, "--batch-tokens", "16384"));
  const int max_seqs = std::stoi(flag(f, "--max-seqs", "512"));
  const bool graphs = flag(f, "--graphs", "1") == "1";
  const PoolMode mode = parse_pool(flag(f, "--pool", "mean"));
  auto seqs = read_ids(flag(f, "--ids", ""));
  RawBert model(flag(f, "--model", ""), d, budget, max_seqs);
  const int H = model.config().hidden;
  // Greedy batches in arrival order under the token budget.
  std::vector<std::pair<std::size_t, std::size_t>> batches;
  std::size_t tokens = 0, total_tokens = 0;
  for (std::size_t i = 0, beg = 0; i < seqs.size(); ++i) {
    if (tokens + seqs[i].size() > static_cast<std::size_t>(budget) || i - beg == static_cast<std::size_t>(max_seqs)) {
      batches.push_back({beg, i});
      beg = i;
      tokens = 0;
    }
    tokens += seqs[i].size();
    total_tokens += seqs[i].size();
    if (i + 1 == seqs.size()) batches.push_back({beg, i + 1});
  }
  std::vector<float> out(seqs.size() * H);
  auto pass = [&]() {
    for (auto [b, e] : batches) {
      std::vector<std::vector<int32_t>> batch(seqs.begin() + b, seqs.begin() + e);
      auto emb = model.embed(batch, mode, false, graphs);
      std::copy(emb.begin(), emb.end(), out.begin() + b * H);
    }
  };
  pass();  // warm-up: plans, graph capture per bucket
  const int repeat = std::stoi(flag(f, "--repeat", "3"));
  std::vector<double> secs;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = Clock::now();
    pass();
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  const double s = secs[secs.size() / 2];
  if (auto o = flag(f, "--out", ""); !o.empty()) {
    std::ofstream of(o, std::ios::binary);
    of.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size() * 4));
  }
  std::cout << nlohmann::json{{"mode", "throughput"}, {"dtype", dtype_name(d)}, {"graphs", graphs},
                              {"texts", seqs.size()}, {"tokens", total_tokens}, {"batches", batches.size()},
                              {"seconds_median", s}, {"texts_per_s", seqs.size() / s},
                              {"tokens_per_s", total_tokens / s}, {"graphs_captured", model.graphs()},
                              {"weight_mib", model.weight_bytes() / 1048576.0}}
                   .dump()
            << std::endl;
  return 0;
}

int latency(const std::map<std::string, std::string>& f) {
  const DType d = dtype_arg(flag(f, "--dtype", "f16"));
  const int len = std::stoi(flag(f, "--len", "16"));
  const int iters = std::stoi(flag(f, "--iters", "300"));
  const bool graphs = flag(f, "--graphs", "1") == "1";
  RawBert model(flag(f, "--model", ""), d, 2048, 64);
  std::mt19937 rng(1);
  std::vector<double> ms;
  for (int i = 0; i < iters + 20; ++i) {
    std::vector<int32_t> s(len);
    for (auto& t : s) t = 1000 + static_cast<int32_t>(rng() % 20000);
    s.front() = 101;
    s.back() = 102;
    auto t0 = Clock::now();
    auto e = model.embed({s}, PoolMode::kMean, true, graphs);
    const double dt = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (i >= 20) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<std::size_t>(p * ms.size()))]; };
  std::cout << nlohmann::json{{"mode", "latency"}, {"dtype", dtype_name(d)}, {"graphs", graphs}, {"len", len},
                              {"iters", iters}, {"p50_ms", pct(0.5)}, {"p99_ms", pct(0.99)}, {"min_ms", ms.front()}}
                   .dump()
            << std::endl;
  return 0;
}

// Loads --model on cuda:0 through the registry with --dtype and --graphs, as a server would.
std::unique_ptr<models::Model> load_cuda_model(const std::map<std::string, std::string>& f,
                                               models::LoadOptions& opt) {
  opt.device = Device::cuda(0);
  opt.dtype = dtype_arg(flag(f, "--dtype", "f16"));
  opt.cuda_graphs = flag(f, "--graphs", "1") == "1";
  auto loaded = models::Registry::global().load(flag(f, "--model", ""), opt);
  if (!loaded.ok()) throw std::runtime_error(loaded.error().message);
  return std::move(loaded).value();
}

// The real model (src/models/bert through the ops' CUDA dispatch; whole-forward CUDA graphs per bucket with
// --graphs 1, eager with 0), same batching as `run`.
int model_path(const std::map<std::string, std::string>& f) {
  models::LoadOptions opt;
  auto model = load_cuda_model(f, opt);
  models::Embedder* e = model->as_embedder();
  auto seqs = read_ids(flag(f, "--ids", ""));
  const std::size_t budget = std::stoul(flag(f, "--batch-tokens", "16384"));
  std::size_t total_tokens = 0;
  auto pass = [&]() {
    std::vector<std::vector<int32_t>> batch;
    std::size_t tokens = 0;
    for (std::size_t i = 0; i <= seqs.size(); ++i) {
      if (i == seqs.size() || tokens + seqs[i].size() > budget) {
        auto r = e->embed(batch);
        if (!r.ok()) throw std::runtime_error(r.error().message);
        batch.clear();
        tokens = 0;
        if (i == seqs.size()) break;
      }
      batch.push_back(seqs[i]);
      tokens += seqs[i].size();
    }
  };
  for (auto& s : seqs) total_tokens += s.size();
  pass();
  auto t0 = Clock::now();
  pass();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cout << nlohmann::json{{"mode", "model_path_throughput"}, {"dtype", dtype_name(*opt.dtype)},
                              {"graphs", opt.cuda_graphs}, {"batch_tokens", budget},
                              {"texts", seqs.size()}, {"tokens", total_tokens}, {"seconds", s},
                              {"texts_per_s", seqs.size() / s}}
                   .dump()
            << std::endl;
  return 0;
}

// Single-request latency through the real model: one sequence of --len tokens per embed() call.
int model_latency(const std::map<std::string, std::string>& f) {
  models::LoadOptions opt;
  auto model = load_cuda_model(f, opt);
  models::Embedder* e = model->as_embedder();
  const int len = std::stoi(flag(f, "--len", "16"));
  const int iters = std::stoi(flag(f, "--iters", "300"));
  std::mt19937 rng(1);
  std::vector<int32_t> seq(len);
  for (auto& id : seq) id = 1996 + static_cast<int32_t>(rng() % 27000);
  seq.front() = 101;
  seq.back() = 102;
  for (int i = 0; i < 20; ++i) {  // warm-up: plans, graph capture
    auto r = e->embed({seq});
    if (!r.ok()) throw std::runtime_error(r.error().message);
  }
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    auto r = e->embed({seq});
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!r.ok()) throw std::runtime_error(r.error().message);
  }
  std::sort(us.begin(), us.end());
  std::cout << nlohmann::json{{"mode", "model_path_latency"}, {"dtype", dtype_name(*opt.dtype)},
                              {"graphs", opt.cuda_graphs}, {"len", len}, {"iters", iters},
                              {"p50_us", us[us.size() / 2]}, {"p99_us", us[us.size() * 99 / 100]},
                              {"min_us", us.front()}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fathom_gpu_bench check DIR | run FLAGS | latency FLAGS\n";
    return 2;
  }
  try {
    std::cerr << "device: " << cuda::device_description(0) << "\n";
    const std::string cmd = argv[1];
    if (cmd == "check" && argc >= 3) return check(argv[2]);
    if (cmd == "run") return run(parse_flags(argc, argv, 2));
    if (cmd == "latency") return latency(parse_flags(argc, argv, 2));
    if (cmd == "model") return model_path(parse_flags(argc, argv, 2));
    if (cmd == "model-latency") return model_latency(parse_flags(argc, argv, 2));
    std::cerr << "unknown command\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
