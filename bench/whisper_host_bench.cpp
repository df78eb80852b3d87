// Host cost of the Whisper scheduler step: runs N jobs (default 64) through step_jobs() on a model
// directory (default: the committed tiny fixture whisper-v3-random-f16, vocabulary 51,866) with
// <|endoftext|> suppressed so every window decodes exactly --tokens tokens, and reports per decode step
// (steps where every job has a row) the wall milliseconds split into
//   network:  WhisperBackend::decode() (on CPU the tiny network itself; on CUDA launches + GPU time + sync)
//   decoding: everything else in step_jobs() (rows, logits rules, token choice, text bookkeeping)
// as wall milliseconds and as CPU milliseconds of all threads (decoding_cpu_ms_per_step: the work, which
// the step spreads over the CPU pool; wall figures on a loaded machine include waiting for a core).
// Usage (from the repository root, or with FATHOM_SOURCE_DIR set): whisper_host_bench [--model DIR] [--jobs N] [--tokens T] [--device cpu|cuda] [--reps R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backends/cpu/parallel.h"
#include "formats/tokenizer/tokenizer.h"
#include "models/whisper/transcription.h"
#include "models/whisper/whisper_model.h"

using namespace fathom;
using namespace fathom::models::whisper;
using Clock = std::chrono::steady_clock;

namespace {

// CPU time of the whole process (every thread), milliseconds.
double process_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// Forwards to the network and times encode / decode calls.
class TimedBackend final : public WhisperBackend {
 public:
  explicit TimedBackend(WhisperBackend& inner) : in_(inner) {}
  int vocab_size() const override { return in_.vocab_size(); }
  int num_mel_bins() const override { return in_.num_mel_bins(); }
  int max_target_positions() const override { return in_.max_target_positions(); }
  int free_slots() const override { return in_.free_slots(); }
  Result<std::vector<int>> acquire_slots(int n) override { return in_.acquire_slots(n); }
  void release_slots(const std::vector<int>& s) override { in_.release_slots(s); }
  Status encode(const std::vector<std::span<const float>>& w, const std::vector<std::vector<int>>& s) override {
    const auto t = Clock::now();
    Status st = in_.encode(w, s);
    encode_ms += ms_since(t);
    return st;
  }
  bool computes_log_mel() const override { return false; }
  decltype(std::declval<WhisperBackend&>().decode({})) decode(const std::vector<DecodeRow>& rows) override {
    const auto t = Clock::now();
    const double c = process_cpu_ms();
    auto r = in_.decode(rows);
    decode_ms += ms_since(t);
    decode_cpu_ms += process_cpu_ms() - c;
    last_rows = rows.size();
    return r;
  }
  double encode_ms = 0, decode_ms = 0, decode_cpu_ms = 0;
  std::size_t last_rows = 0;

 private:
  WhisperBackend& in_;
};

}  // namespace

int main(int argc, char** argv) {
  const char* src = std::getenv("FATHOM_SOURCE_DIR");
  std::string model_dir = std::string(src ? src : ".") + "/tests/fixtures/models/whisper-v3-random-f16";
  std::string device = "cpu";
  int jobs = 64, tokens = 64, reps = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--model") model_dir = argv[i + 1];
    else if (k == "--jobs") jobs = std::stoi(argv[i + 1]);
    else if (k == "--tokens") tokens = std::stoi(argv[i + 1]);
    else if (k == "--device") device = argv[i + 1];
    else if (k == "--reps") reps = std::stoi(argv[i + 1]);
  }
  std::ifstream cf(model_dir + "/config.json");
  if (!cf) {
    std::fprintf(stderr, "cannot read %s/config.json\n", model_dir.c_str());
    return 1;
  }
  const nlohmann::json config = nlohmann::json::parse(cf, nullptr, false);
  models::LoadOptions lo;
  if (device == "cuda") lo.device = Device::cuda(0);
  auto loaded = WhisperModel::load(model_dir, config, lo, whisper_model_info(), jobs);
  if (!loaded.ok()) {
    std::fprintf(stderr, "load failed: %s\n", loaded.error().message.c_str());
    return 1;
  }
  WhisperModel& model = *loaded.value();
  TimedBackend backend(model.network());
  GenerationConfig gen = model.speech().generation_config();
  gen.suppress_tokens.push_back(gen.eos_token_id);  // every window decodes exactly `tokens` tokens
  const auto& tok = model.speech().tokenizer();
  TextDecoder text = [&tok](const std::vector<int32_t>& ids) {
    auto r = tok.decode(ids, true);
    return r.ok() ? r.value() : std::string();
  };
  const int n_mels = backend.num_mel_bins();
  std::vector<float> mel(static_cast<std::size_t>(n_mels) * 3000);
  for (std::size_t i = 0; i < mel.size(); ++i) mel[i] = -0.5f + 0.25f * static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;

  double best_network = 0, best_decoding = 0, best_decoding_cpu = 0;
  int best_steps = 0;
  for (int rep = 0; rep < reps; ++rep) {
    std::vector<std::unique_ptr<TranscriptionJob>> owned;
    std::vector<TranscriptionJob*> ptrs;
    for (int j = 0; j < jobs; ++j) {
      JobSetup setup;
      setup.window.language = "en";
      setup.window.max_new_tokens = tokens;
      owned.push_back(std::make_unique<TranscriptionJob>(text, gen, backend.vocab_size(), backend.max_target_positions(),
                                                         n_mels, mel, 3000, 30.0, setup));
      ptrs.push_back(owned.back().get());
    }
    double network = 0, decoding = 0, decoding_cpu = 0;
    int steps = 0;
    for (int guard = 0; guard < 10 * tokens + 10; ++guard) {
      if (std::all_of(ptrs.begin(), ptrs.end(), [](auto* j) { return j->done(); })) break;
      backend.encode_ms = backend.decode_ms = backend.decode_cpu_ms = 0;
      backend.last_rows = 0;
      const auto t = Clock::now();
      const double c = process_cpu_ms();
      step_jobs(backend, ptrs);
      const double total = ms_since(t);
      const double total_cpu = process_cpu_ms() - c;
      if (backend.encode_ms == 0 && backend.last_rows == static_cast<std::size_t>(jobs)) {
        network += backend.decode_ms;
        decoding += total - backend.decode_ms;
        decoding_cpu += total_cpu - backend.decode_cpu_ms;
        ++steps;
      }
    }
    for (auto* j : ptrs) {
      auto r = j->result();
      if (!r.ok()) {
        std::fprintf(stderr, "job failed: %s\n", r.error().message.c_str());
        return 1;
      }
    }
    if (steps > 0 && (rep == 0 || decoding / steps < best_decoding)) {
      best_network = network / steps;
      best_decoding = decoding / steps;
      best_decoding_cpu = decoding_cpu / steps;
      best_steps = steps;
    }
  }
  nlohmann::json out = {{"model", model_dir},
                        {"device", device},
                        {"jobs", jobs},
                        {"tokens", tokens},
                        {"host_threads", cpu::num_threads()},
                        {"steps_measured", best_steps},
                        {"network_ms_per_step", best_network},
                        {"decoding_ms_per_step", best_decoding},
                        {"decoding_cpu_ms_per_step", best_decoding_cpu}};
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
