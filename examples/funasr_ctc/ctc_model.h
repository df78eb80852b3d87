#pragma once
// A FunASR-style non-autoregressive speech model with a CTC head ("FunASRCTCModel"), served through
// fathom's SpeechToText capability (task transcribe, /v1/audio/transcriptions).
//
// Pipeline for one utterance (16 kHz mono samples in [-1, 1]):
//   Kaldi log filterbank (fathom's formats/fbank/kaldi_fbank.h: 80 bins, 25 / 10 ms, povey, pre-emphasis 0.97, DC removed, no dither,
//   samples scaled to the int16 range)  ->  LFR stacking (m = 7, n = 6: [T/6, 560])  ->  global CMVN
//   (x + frontend.cmvn_shift) * frontend.cmvn_scale  ->  encoder.in_proj (Linear 560 -> d) * sqrt(d) plus
//   FunASR's sinusoidal position encoding (positions 1..T)  ->  num_blocks pre-norm SAN-M-like blocks:
//     h = norm1(x); q|k|v = self_attn.linear_q_k_v(h); a = MHA(q, k, v);
//     m = v + depthwise_conv1d(v, self_attn.fsmn_block, kernel_size, zero padding (k-1)/2 both sides);
//     x = x + self_attn.linear_out(a) + m;  x = x + feed_forward.w_2(relu(feed_forward.w_1(norm2(x))))
//   ->  encoder.after_norm  ->  ctc.ctc_lo (Linear d -> vocab)  ->  greedy CTC (argmax per frame, collapse
//   repeats, drop blank_id)  ->  tokens.json pieces joined, U+2581 -> space, trimmed.
// Checkpoint: model.safetensors (float32/16 tensors with the names above), config.json (architectures[0]
// "FunASRCTCModel", "frontend" and "encoder" objects, vocab_size, blank_id), tokens.json (a JSON list of
// vocab_size pieces) and tokenizer.json (the same vocabulary as a fathom Tokenizer).
//
// Runs on CPU in float32 over fathom's ops. Several utterances are encoded in one packed batch per step.
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "diagnostics.h"
#include "models/registry.h"

namespace funasr_ctc {

inline constexpr const char* kArchitecture = "FunASRCTCModel";

fathom::Result<std::unique_ptr<fathom::models::Model>> load_model(const std::filesystem::path& dir,
                                                                  const nlohmann::json& config,
                                                                  const fathom::models::LoadOptions& options,
                                                                  const fathom::models::ModelInfo& info);

fathom::Status run_diagnostics(fathom::models::Model* model, const std::vector<float>& samples, CtcOutputs* out);

}  // namespace funasr_ctc
