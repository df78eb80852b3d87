// Decode throughput of the decoder-LLM core (a Qwen2 / Qwen3 Hugging Face directory) through its continuous-
// batching Generator, in-process (CUDA builds).
//
//   fathom_decoder_bench --model DIR [--dtype float16] [--batch 64] [--prompt 32] [--tokens 128]
//                        [--cuda-graphs on|off] [--repeats 3] [--out results.json]
//
// `batch` requests of `prompt` token ids (deterministic pseudo-random ids) each generate exactly `tokens`
// tokens greedily (no stop ids), all submitted at once; tokens/s = batch * tokens / wall seconds of the whole
// generation (prefill included), median over `repeats` after one warm-up.
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/decoder/generator.h"
#include "speech_loop.h"

using namespace fathom;

int main(int argc, char** argv) {
  std::string model_dir, out_path, dtype_arg = "float16";
  int batch = 64, prompt = 32, tokens = 128, repeats = 3;
  bool graphs = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--model") model_dir = v;
    else if (k == "--out") out_path = v;
    else if (k == "--dtype") dtype_arg = v;
    else if (k == "--batch") batch = std::stoi(v);
    else if (k == "--prompt") prompt = std::stoi(v);
    else if (k == "--tokens") tokens = std::stoi(v);
    else if (k == "--repeats") repeats = std::stoi(v);
    else if (k == "--cuda-graphs") graphs = v != "off";
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  models::decoder::DecoderLoadOptions lo;
  lo.device = Device::cuda(0);
  lo.dtype = parse_dtype(dtype_arg).value_or(DType::kF16);
  lo.cuda_graphs = graphs;
  lo.kv_cache_bytes = std::size_t(8) << 30;
  auto lm = models::decoder::DecoderLm::load_directory(model_dir, lo);
  if (!lm.ok()) {
    std::cerr << "load failed: " << lm.error().message << "\n";
    return 1;
  }
  models::decoder::GeneratorOptions go;
  go.max_sequences = std::max(batch, 1);
  go.max_batch_tokens = std::max(4096, batch * prompt);
  models::decoder::Generator gen(*lm.value(), go);
  const int vocab = lm.value()->vocab_size();
  auto once = [&]() -> double {
    for (int b = 0; b < batch; ++b) {
      models::decoder::GenerationRequest r;
      models::decoder::PromptPart part;
      for (int t = 0; t < prompt; ++t) part.ids.push_back(static_cast<int32_t>((1009u * b + 7919u * t + 13u) % vocab));
      r.prompt.push_back(std::move(part));
      r.max_completion_tokens = tokens;
      r.stop_token_ids = std::vector<int32_t>{};
      if (!gen.submit(std::move(r)).ok()) std::exit(1);
    }
    const auto t0 = bench::Clock::now();
    std::size_t produced = 0;
    while (!gen.idle()) {
      auto ev = gen.step();
      if (!ev.ok()) {
        std::cerr << "step failed: " << ev.error().message << "\n";
        std::exit(1);
      }
      for (const auto& e : ev.value()) {
        if (e.error) {
          std::cerr << "request failed: " << e.error->message << "\n";
          std::exit(1);
        }
        produced += e.token >= 0;
      }
    }
    const double wall = bench::seconds_since(t0);
    if (produced != static_cast<std::size_t>(batch) * tokens) std::cerr << "produced " << produced << " tokens\n";
    return wall;
  };
  once();
  std::vector<double> walls;
  for (int i = 0; i < repeats; ++i) walls.push_back(once());
  const double wall = bench::percentile(walls, 0.5);
  const nlohmann::json out = {{"model", model_dir},
                              {"dtype", dtype_name(lm.value()->dtype())},
                              {"batch", batch},
                              {"prompt", prompt},
                              {"tokens", tokens},
                              {"cuda_graphs", lm.value()->uses_graphs()},
                              {"wall_s_median", wall},
                              {"tokens_per_s", batch * tokens / wall},
                              {"ms_per_step", wall * 1e3 / tokens},
                              {"graphs_captured", lm.value()->graph_count()}};
  std::cout << out.dump() << std::endl;
  if (!out_path.empty()) std::ofstream(out_path) << out.dump(1) << "\n";
  return 0;
}
