// Whisper throughput / latency on the real model and its scheduler, in-process (CUDA builds).
//
//   fathom_whisper_bench --model DIR --audio FILE.f32 [--dtype float16] [--concurrency 64] [--requests N]
//                        [--tokens 64] [--out results.json]
//
// FILE.f32: raw little-endian float32 16 kHz mono samples (one window, at most 30 s). Every request
// transcribes that audio (language en, no timestamps) with max_completion_tokens = --tokens; the model
// directory's generation_config.json should suppress <|endoftext|> so every window decodes exactly that
// many tokens (checked and reported). `concurrency` requests are kept in flight (closed loop) until
// `requests` have finished; RTFx = requests * 30 s / wall seconds (each request is one 30 s window).
// Afterwards the encoder (one batch of `concurrency` windows) and the decoder step (batch `concurrency`)
// are timed alone through the network, to show where the time goes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/speech_scheduler.h"
#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/conv1d.h"
#include "ops/device_runner.h"
#include "ops/gemm.h"
#include "models/whisper/whisper_model.h"
#include "speech_loop.h"

using namespace fathom;
using bench::Clock;
using bench::percentile;
using bench::RunResult;
using bench::seconds_since;

namespace {

// The encoder's ops alone at batch `B` windows (one layer; x layers = the encoder's estimate), on
// uninitialised device memory of the model's dtype: where an encoder pass spends its time.
nlohmann::json encoder_breakdown(const models::whisper::WhisperConfig& c, DType dt, int B) {
  nlohmann::json out;
  auto runner = ops::DeviceRunner::create(Device::cuda(0));
  if (!runner.ok()) return out;
  MemoryAccount account("encoder-breakdown");
  Allocator* alloc = allocator_for(Device::cuda(0));
  Workspace ws(*alloc, &account);
  ExecContext ctx;
  ctx.device = Device::cuda(0);
  ctx.stream = runner.value()->stream();
  ctx.allocator = alloc;
  ctx.account = &account;
  ctx.workspace = &ws;
  const int64_t d = c.d_model, F = c.max_source_positions, N = static_cast<int64_t>(B) * F, ffn = c.encoder_ffn_dim;
  const int64_t mels = c.num_mel_bins;
  const std::size_t es = dtype_size(dt);
  auto buf = [&](int64_t n) { return Buffer::allocate(*alloc, static_cast<std::size_t>(n) * es, &account); };
  auto mel = buf(B * mels * 2 * F), c1 = buf(N * 2 * d), x = buf(N * d), big = buf(N * std::max(3 * d, ffn)),
       w1 = buf(d * mels * 3), w2 = buf(d * d * 3), wqkv = buf(3 * d * d), wfc = buf(ffn * d), b = buf(std::max(3 * d, ffn));
  if (!mel.ok() || !c1.ok() || !x.ok() || !big.ok() || !w1.ok() || !w2.ok() || !wqkv.ok() || !wfc.ok() || !b.ok()) {
    out["error"] = "allocation failed";
    return out;
  }
  auto time_ms = [&](const char* name, const std::function<Status()>& fn) {
    (void)fn();
    (void)runner.value()->synchronize();
    const auto t = Clock::now();
    for (int i = 0; i < 3; ++i) (void)fn();
    Status st = runner.value()->synchronize();
    out[name] = st.ok() ? seconds_since(t) * 1e3 / 3 : -1.0;
  };
  TensorView melv = mel->view(dt, Shape{B, mels, 2 * F}), c1v = c1->view(dt, Shape{B, 2 * F, d});
  TensorView xv = x->view(dt, Shape{B, F, d}), x2 = x->view(dt, Shape{N, d});
  TensorView w1v = w1->view(dt, Shape{d, mels, 3}), w2v = w2->view(dt, Shape{d, d, 3}), bd = b->view(dt, Shape{d});
  TensorView qkv = big->view(dt, Shape{N, 3 * d}), f = big->view(dt, Shape{N, ffn});
  TensorView wq = wqkv->view(dt, Shape{3 * d, d}), w1f = wfc->view(dt, Shape{ffn, d}), w2f = wfc->view(dt, Shape{d, ffn});
  TensorView b3 = b->view(dt, Shape{3 * d}), bf = b->view(dt, Shape{ffn});
  const int heads = c.encoder_attention_heads, hd = static_cast<int>(d / heads);
  ops::VarlenBatch vb = ops::VarlenBatch::from_lengths(std::vector<int>(static_cast<std::size_t>(B), static_cast<int>(F)));
  time_ms("conv1_ms", [&] { return ops::conv1d(ctx, melv, ops::Conv1dInput::kChannelMajor, w1v, &bd, 1, 1, c1v); });
  time_ms("conv2_ms", [&] { return ops::conv1d(ctx, c1v, ops::Conv1dInput::kTimeMajor, w2v, &bd, 2, 1, xv); });
  time_ms("layer_qkv_gemm_ms", [&] { return ops::linear(ctx, x2, wq, &b3, qkv); });
  time_ms("layer_attention_ms", [&] { return ops::attention_varlen(ctx, qkv, vb, heads, hd, 1.0f / 8, x2); });
  time_ms("layer_fc1_gemm_ms", [&] { return ops::linear(ctx, x2, w1f, &bf, f); });
  time_ms("layer_gelu_ms", [&] { return ops::gelu(ctx, f, f, ops::GeluMode::kErf); });
  time_ms("layer_fc2_gemm_ms", [&] { return ops::linear(ctx, f, w2f, &bd, x2); });
  out["batch"] = B;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model_dir, audio_path, out_path, dtype_name_arg = "float16";
  int concurrency = 64, requests = 0, tokens = 64;
  bool graphs = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--audio") audio_path = v;
    else if (k == "--out") out_path = v;
    else if (k == "--dtype") dtype_name_arg = v;
    else if (k == "--concurrency") concurrency = std::stoi(v);
    else if (k == "--requests") requests = std::stoi(v);
    else if (k == "--tokens") tokens = std::stoi(v);
    else if (k == "--cuda-graphs") graphs = v != "off";
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (model_dir.empty() || audio_path.empty()) {
    std::cerr << "usage: fathom_whisper_bench --model DIR --audio FILE.f32 [--concurrency N] [--requests N]\n";
    return 2;
  }
  if (requests <= 0) requests = concurrency;
  std::ifstream af(audio_path, std::ios::binary | std::ios::ate);
  std::vector<float> audio(static_cast<std::size_t>(af.tellg()) / sizeof(float));
  af.seekg(0);
  af.read(reinterpret_cast<char*>(audio.data()), static_cast<std::streamsize>(audio.size() * sizeof(float)));

  std::ifstream cf(model_dir + "/config.json");
  auto config = nlohmann::json::parse(cf);
  models::LoadOptions lo;
  lo.device = Device::cuda(0);
  lo.dtype = parse_dtype(dtype_name_arg);
  lo.cuda_graphs = graphs;
  const auto tl = Clock::now();
  auto loaded = models::whisper::WhisperModel::load(model_dir, config, lo, models::whisper::whisper_model_info(),
                                                   std::max(concurrency, 1));
  if (!loaded.ok()) {
    std::cerr << "load failed: " << loaded.error().message << "\n";
    return 1;
  }
  auto& model = *loaded.value();
  const double load_s = seconds_since(tl);
  engine::SpeechSchedulerOptions so;
  so.max_jobs = static_cast<std::size_t>(std::max(concurrency, 1)) * 2;
  engine::SpeechScheduler sched("whisper", model.speech(), so);
  models::SpeechOptions o;
  o.language = "en";
  o.max_new_tokens = tokens;

  // Warm-up (cuBLAS heuristics, allocator pools, arena at full size).
  bench::run_closed_loop(sched, audio, o, concurrency, concurrency);
  RunResult r = bench::run_closed_loop(sched, audio, o, concurrency, requests);

  const double window_s = 30.0;
  const double total_tokens = std::accumulate(r.tokens.begin(), r.tokens.end(), 0.0);
  nlohmann::json out = {
      {"model", model_dir},
      {"dtype", dtype_name(model.dtype())},
      {"concurrency", concurrency},
      {"cuda_graphs", model.network().uses_graphs()},
      {"requests", requests},
      {"tokens_per_window_requested", tokens},
      {"tokens_per_window_mean", total_tokens / std::max<std::size_t>(1, r.tokens.size())},
      {"tokens_per_window_min", r.tokens.empty() ? 0 : *std::min_element(r.tokens.begin(), r.tokens.end())},
      {"wall_s", r.wall},
      {"rtfx", requests * window_s / r.wall},
      {"latency_mean_s", std::accumulate(r.latency.begin(), r.latency.end(), 0.0) / std::max<std::size_t>(1, r.latency.size())},
      {"latency_p50_s", percentile(r.latency, 0.5)},
      {"latency_p90_s", percentile(r.latency, 0.9)},
      {"scheduler_steps", r.steps},
      {"load_s", load_s},
      {"memory_gib", model.memory_bytes() / 1073741824.0},
  };

  // Where the time goes: the encoder on one batch of `concurrency` windows, and decoder steps at batch
  // `concurrency` (after the 4-token prompt, one new token per row), through the network directly.
  auto& net = model.network();
  const int B = std::min(concurrency, net.free_slots());
  auto slots = net.acquire_slots(B);
  if (slots.ok()) {
    std::vector<std::span<const float>> windows(static_cast<std::size_t>(B), std::span<const float>(audio));
    std::vector<std::vector<int>> lists;
    for (int s : slots.value()) lists.push_back({s});
    const auto te = Clock::now();
    Status st = net.encode_audio(windows, lists);
    const double enc_s = seconds_since(te);
    if (st.ok()) {
      const auto& gen = model.speech().generation_config();
      std::vector<int32_t> prompt{gen.decoder_start_token_id, *gen.language_token("en"), gen.task_to_id.at("transcribe"),
                                  gen.no_timestamps_token_id};
      std::vector<models::whisper::DecodeRow> rows;
      for (int s : slots.value()) rows.push_back({s, -1, 0, prompt});
      auto first = net.decode(rows);
      const int steps = std::min(tokens, 32);
      std::vector<double> step_ms;
      for (int k = 0; first.ok() && k < steps; ++k) {
        for (auto& row : rows) {
          row.cached = static_cast<int>(row.tokens.size());
          row.tokens.push_back(220 + k);
        }
        const auto ts = Clock::now();
        auto l = net.decode(rows);
        step_ms.push_back(seconds_since(ts) * 1e3);
        if (!l.ok()) break;
      }
      out["encoder_batch"] = B;
      out["encoder_batch_ms"] = enc_s * 1e3;
      out["decode_step_batch"] = B;
      out["decode_step_ms_mean"] = step_ms.empty() ? 0 : std::accumulate(step_ms.begin(), step_ms.end(), 0.0) / step_ms.size();
      out["decode_step_ms_p50"] = percentile(step_ms, 0.5);
      out["decode_only_estimate_s"] = (out["decode_step_ms_mean"].get<double>() * (tokens + 1)) / 1e3;
    } else {
      out["encoder_error"] = st.error().message;
    }
    net.release_slots(slots.value());
  }
  out["encoder_ops_one_layer"] = encoder_breakdown(model.config(), model.dtype(), B);
  std::cout << out.dump() << std::endl;
  if (!out_path.empty()) std::ofstream(out_path) << out.dump(1) << "\n";
  return 0;
}
