#pragma once
// Diagnostic entry point of the funasr_ctc plugin, for tests and tools: every intermediate of one
// utterance. Reached with dlsym (fathom::models::plugin_symbol) on the loaded plugin; the Model must be
// one this plugin loaded. Same ABI contract as models/plugin_api.h.
#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "models/model.h"

namespace funasr_ctc {

struct CtcOutputs {
  int fbank_frames = 0;
  std::vector<float> fbank;       // [fbank_frames, num_mel_bins] log filterbank
  int lfr_frames = 0;
  std::vector<float> lfr;         // [lfr_frames, lfr_m * num_mel_bins], after CMVN
  std::vector<float> encoder;     // [lfr_frames, d_model], after the final LayerNorm
  std::vector<float> logits;      // [lfr_frames, vocab_size], CTC head output (before log-softmax)
  std::vector<int32_t> argmax;    // per LFR frame
  std::vector<int32_t> tokens;    // greedy CTC: repeats collapsed, blanks dropped
  std::string text;               // tokens joined, U+2581 -> space, trimmed
};

// Runs `model` (a FunASRCTCModel) on 16 kHz mono `samples` in [-1, 1].
using RunDiagnosticsFn = fathom::Status (*)(fathom::models::Model* model, const std::vector<float>& samples,
                                            CtcOutputs* out);
inline constexpr const char* kRunDiagnosticsSymbol = "funasr_ctc_run_diagnostics";

}  // namespace funasr_ctc
