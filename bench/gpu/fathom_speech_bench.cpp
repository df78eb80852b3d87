// Throughput / latency of any speech-to-text model the registry loads (e.g. a FunASR-Nano audio-LLM), through
// its SpeechScheduler in-process (CUDA builds).
//
//   fathom_speech_bench --model DIR --audio FILE.f32 [--dtype float16] [--concurrency 64] [--requests N]
//                       [--tokens 64] [--cuda-graphs on|off] [--out results.json]
//
// FILE.f32: raw little-endian float32 16 kHz mono samples. Every request transcribes that audio with
// max_completion_tokens = --tokens (the generated counts are reported: a model that stops early shows it).
// `concurrency` requests are kept in flight until `requests` have finished, after one warm-up round;
// RTFx = requests * audio seconds / wall seconds.
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>

#include <nlohmann/json.hpp>

#include "models/registry.h"
#include "speech_loop.h"

using namespace fathom;

int main(int argc, char** argv) {
  std::string model_dir, audio_path, out_path, dtype_arg = "float16";
  int concurrency = 64, requests = 0, tokens = 64;
  bool graphs = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--audio") audio_path = v;
    else if (k == "--out") out_path = v;
    else if (k == "--dtype") dtype_arg = v;
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
    std::cerr << "usage: fathom_speech_bench --model DIR --audio FILE.f32 [--concurrency N] [--requests N]\n";
    return 2;
  }
  if (requests <= 0) requests = concurrency;
  std::ifstream af(audio_path, std::ios::binary | std::ios::ate);
  std::vector<float> audio(static_cast<std::size_t>(af.tellg()) / sizeof(float));
  af.seekg(0);
  af.read(reinterpret_cast<char*>(audio.data()), static_cast<std::streamsize>(audio.size() * sizeof(float)));

  models::LoadOptions lo;
  lo.device = Device::cuda(0);
  lo.dtype = parse_dtype(dtype_arg);
  lo.cuda_graphs = graphs;
  const auto tl = bench::Clock::now();
  auto loaded = models::Registry::global().load(model_dir, lo);
  if (!loaded.ok()) {
    std::cerr << "load failed: " << loaded.error().message << "\n";
    return 1;
  }
  auto& model = *loaded.value();
  const double load_s = bench::seconds_since(tl);
  models::SpeechToText* stt = model.as_speech_to_text();
  if (!stt) {
    std::cerr << model_dir << " is not a speech-to-text model\n";
    return 1;
  }
  engine::SpeechSchedulerOptions so;
  so.max_jobs = static_cast<std::size_t>(std::max(concurrency, 1)) * 2;
  engine::SpeechScheduler sched("bench", *stt, so);
  models::SpeechOptions o;
  o.max_new_tokens = tokens;

  bench::run_closed_loop(sched, audio, o, concurrency, concurrency);  // warm-up: graphs, arenas, cuBLAS
  const bench::RunResult r = bench::run_closed_loop(sched, audio, o, concurrency, requests);
  const double audio_s = audio.size() / 16000.0;
  const double total_tokens = std::accumulate(r.tokens.begin(), r.tokens.end(), 0.0);
  const nlohmann::json out = {
      {"model", model_dir},
      {"architecture", model.architecture()},
      {"dtype", dtype_name(model.dtype())},
      {"concurrency", concurrency},
      {"cuda_graphs", graphs},
      {"requests", requests},
      {"audio_s", audio_s},
      {"tokens_requested", tokens},
      {"tokens_mean", total_tokens / std::max<std::size_t>(1, r.tokens.size())},
      {"tokens_min", r.tokens.empty() ? 0 : *std::min_element(r.tokens.begin(), r.tokens.end())},
      {"wall_s", r.wall},
      {"rtfx", requests * audio_s / r.wall},
      {"tokens_per_s", total_tokens / r.wall},
      {"latency_mean_s", std::accumulate(r.latency.begin(), r.latency.end(), 0.0) / std::max<std::size_t>(1, r.latency.size())},
      {"latency_p50_s", bench::percentile(r.latency, 0.5)},
      {"latency_p90_s", bench::percentile(r.latency, 0.9)},
      {"scheduler_steps", r.steps},
      {"load_s", load_s},
      {"memory_gib", model.memory_bytes() / 1073741824.0},
  };
  std::cout << out.dump() << std::endl;
  if (!out_path.empty()) std::ofstream(out_path) << out.dump(1) << "\n";
  return 0;
}
