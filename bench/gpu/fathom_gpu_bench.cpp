// GPU harness for the CUDA backend: throughput and single-request latency of the real model path (the
// Registry-loaded model, src/models, through the ops' CUDA dispatch), as a server runs it.
//
//   fathom_gpu_bench run --model DIR --dtype f16 --ids FILE [--out FILE] [--batch-tokens 16384] [--max-seqs 512]
//                        [--graphs 1] [--repeat 3]
//   fathom_gpu_bench latency --model DIR --dtype f16 [--len 16] [--iters 300] [--graphs 1]
//   fathom_gpu_bench profile --model DIR --dtype f16 --ids FILE [--batch-tokens 16384] [--max-seqs 512]
//       (eager passes with FATHOM_PROFILE_OPS=1: the model logs per-stage GPU time when it is destroyed)
//   fathom_gpu_bench request-latency --model DIR --dtype f16 --ids FILE [--iters 300] [--graphs 1]
//       (every sequence of FILE is one request, e.g. a rerank of 1 query x 100 documents as tokenized pairs;
//        wall time of the whole request, batched under --batch-tokens as the server batches it)
// Embedding models and sequence classifiers (cross-encoders) both run: an embedder's rows are pooled
// embeddings, a classifier's rows are its logits (one per label).
// ids FILE: int32 little-endian: count, then per sequence its length and token ids. --out writes
// count x hidden float32 (pooled, not normalised). Results print as one JSON object per line.
// Load time (weights + CUDA graph capture of every token bucket) is reported as load_ms.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cuda/device.h"
#include "models/registry.h"

using namespace fathom;
using Clock = std::chrono::steady_clock;

namespace {

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

// Loads --model on --device (default cuda:0; cpu for the CPU reference path) through the registry with
// --dtype, --graphs and --batch-tokens, as a server would; `load_ms` receives the load time (weights and,
// with graphs, the capture of every bucket).
std::unique_ptr<models::Model> load_cuda_model(const std::map<std::string, std::string>& f, models::LoadOptions& opt,
                                               double& load_ms) {
  const auto device = parse_device(flag(f, "--device", "cuda:0"));
  if (!device) throw std::runtime_error("--device: cpu or cuda[:N] expected, got " + flag(f, "--device", ""));
  opt.device = *device;
  opt.dtype = dtype_arg(flag(f, "--dtype", "f16"));
  opt.cuda_graphs = flag(f, "--graphs", "1") == "1";
  opt.max_batch_tokens = std::stoi(flag(f, "--batch-tokens", "16384"));
  const auto t0 = Clock::now();
  auto loaded = models::Registry::global().load(flag(f, "--model", ""), opt);
  load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  if (!loaded.ok()) throw std::runtime_error(loaded.error().message);
  return std::move(loaded).value();
}

// Greedy batches in arrival order under the token budget and the sequence cap.
std::vector<std::pair<std::size_t, std::size_t>> make_batches(const std::vector<std::vector<int32_t>>& seqs,
                                                              std::size_t budget, std::size_t max_seqs) {
  std::vector<std::pair<std::size_t, std::size_t>> batches;
  std::size_t tokens = 0, beg = 0;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (i > beg && (tokens + seqs[i].size() > budget || i - beg == max_seqs)) {
      batches.push_back({beg, i});
      beg = i;
      tokens = 0;
    }
    tokens += seqs[i].size();
  }
  if (beg < seqs.size()) batches.push_back({beg, seqs.size()});
  return batches;
}

// The forward pass the harness times: embed() of an embedder, classify() of a classifier; `width` is the
// number of floats per sequence it returns.
struct Forward {
  std::function<Result<std::vector<float>>(const std::vector<std::vector<int32_t>>&)> run;
  int width = 0;
};

Forward forward_of(models::Model& model) {
  if (models::Embedder* e = model.as_embedder())
    return {[e](const std::vector<std::vector<int32_t>>& b) { return e->embed(b); }, e->embedding_dim()};
  if (models::Classifier* c = model.as_classifier())
    return {[c](const std::vector<std::vector<int32_t>>& b) { return c->classify(b); },
            static_cast<int>(c->labels().size())};
  throw std::runtime_error("neither an embedding model nor a classifier");
}

// Throughput over --ids (same batching as a server under --batch-tokens); --out keeps the pooled rows.
int run(const std::map<std::string, std::string>& f, bool profile) {
  if (profile) setenv("FATHOM_PROFILE_OPS", "1", 1);
  models::LoadOptions opt;
  double load_ms = 0;
  auto model = load_cuda_model(f, opt, load_ms);
  const Forward fwd = forward_of(*model);
  const int H = fwd.width;
  auto seqs = read_ids(flag(f, "--ids", ""));
  const auto batches = make_batches(seqs, std::stoul(flag(f, "--batch-tokens", "16384")),
                                    std::stoul(flag(f, "--max-seqs", "512")));
  std::size_t total_tokens = 0;
  for (auto& s : seqs) total_tokens += s.size();
  std::vector<float> out(seqs.size() * H);
  auto pass = [&]() {
    for (auto [b, end] : batches) {
      std::vector<std::vector<int32_t>> batch(seqs.begin() + b, seqs.begin() + end);
      auto r = fwd.run(batch);
      if (!r.ok()) throw std::runtime_error(r.error().message);
      std::copy(r->begin(), r->end(), out.begin() + b * H);
    }
  };
  pass();  // warm-up: GEMM plans, allocator
  const int repeat = profile ? 1 : std::stoi(flag(f, "--repeat", "3"));
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
  std::cout << nlohmann::json{{"mode", profile ? "profile" : "throughput"}, {"dtype", dtype_name(*opt.dtype)},
                              {"graphs", opt.cuda_graphs}, {"batch_tokens", opt.max_batch_tokens},
                              {"texts", seqs.size()}, {"tokens", total_tokens}, {"batches", batches.size()},
                              {"seconds_median", s}, {"texts_per_s", seqs.size() / s},
                              {"tokens_per_s", total_tokens / s}, {"load_ms", load_ms},
                              {"memory_mib", model->memory_bytes() / 1048576.0}}
                   .dump()
            << std::endl;
  return 0;
}

// Single-request latency: one sequence of --len tokens per embed() call, wall time around the call.
int latency(const std::map<std::string, std::string>& f) {
  models::LoadOptions opt;
  double load_ms = 0;
  auto model = load_cuda_model(f, opt, load_ms);
  const Forward fwd = forward_of(*model);
  const int len = std::stoi(flag(f, "--len", "16"));
  const int iters = std::stoi(flag(f, "--iters", "300"));
  std::mt19937 rng(1);
  std::vector<int32_t> seq(len);
  for (auto& id : seq) id = 1996 + static_cast<int32_t>(rng() % 27000);
  seq.front() = 101;
  seq.back() = 102;
  for (int i = 0; i < 20; ++i) {  // warm-up
    auto r = fwd.run({seq});
    if (!r.ok()) throw std::runtime_error(r.error().message);
  }
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    auto r = fwd.run({seq});
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (!r.ok()) throw std::runtime_error(r.error().message);
  }
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
  std::cout << nlohmann::json{{"mode", "latency"}, {"dtype", dtype_name(*opt.dtype)}, {"graphs", opt.cuda_graphs},
                              {"len", len}, {"iters", iters}, {"p50_us", p50}, {"p99_us", p99},
                              {"p50_ms", p50 / 1e3}, {"p99_ms", p99 / 1e3}, {"min_us", us.front()},
                              {"load_ms", load_ms}}
                   .dump()
            << std::endl;
  return 0;
}

// One request of several sequences (--ids, e.g. the 100 query-document pairs of a rerank), timed whole:
// the wall time from the first batch's launch to the last batch's results on the host.
int request_latency(const std::map<std::string, std::string>& f) {
  models::LoadOptions opt;
  double load_ms = 0;
  auto model = load_cuda_model(f, opt, load_ms);
  const Forward fwd = forward_of(*model);
  const auto seqs = read_ids(flag(f, "--ids", ""));
  const auto batches = make_batches(seqs, std::stoul(flag(f, "--batch-tokens", "16384")),
                                    std::stoul(flag(f, "--max-seqs", "512")));
  const int iters = std::stoi(flag(f, "--iters", "300"));
  std::size_t tokens = 0;
  for (auto& s : seqs) tokens += s.size();
  auto request = [&]() {
    for (auto [b, end] : batches) {
      auto r = fwd.run(std::vector<std::vector<int32_t>>(seqs.begin() + b, seqs.begin() + end));
      if (!r.ok()) throw std::runtime_error(r.error().message);
    }
  };
  for (int i = 0; i < 20; ++i) request();  // warm-up
  std::vector<double> us;
  for (int i = 0; i < iters; ++i) {
    auto t0 = Clock::now();
    request();
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100];
  std::cout << nlohmann::json{{"mode", "request-latency"}, {"dtype", dtype_name(*opt.dtype)},
                              {"graphs", opt.cuda_graphs}, {"sequences", seqs.size()}, {"tokens", tokens},
                              {"batches", batches.size()}, {"iters", iters}, {"p50_ms", p50 / 1e3},
                              {"p99_ms", p99 / 1e3}, {"min_ms", us.front() / 1e3}, {"load_ms", load_ms}}
                   .dump()
            << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fathom_gpu_bench run|latency|profile|request-latency FLAGS\n";
    return 2;
  }
  try {
    try {
      std::cerr << "device: " << cuda::device_description(0) << "\n";
    } catch (const std::exception& e) {  // no GPU here: --device cpu still runs
      std::cerr << "device: no CUDA device (" << e.what() << ")\n";
    }
    const std::string cmd = argv[1];
    if (cmd == "run" || cmd == "model") return run(parse_flags(argc, argv, 2), false);
    if (cmd == "profile") return run(parse_flags(argc, argv, 2), true);
    if (cmd == "latency" || cmd == "model-latency") return latency(parse_flags(argc, argv, 2));
    if (cmd == "request-latency") return request_latency(parse_flags(argc, argv, 2));
    std::cerr << "unknown command " << cmd << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}


