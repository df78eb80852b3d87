#pragma once
// The network as the decoding logic sees it: an encoder over 30 s mel windows and a batched decoder step
// over cache slots. Implemented by the Whisper network (whisper_model.h) and by fakes in tests.
// Called from the device worker thread only.
#include <span>
#include <vector>

#include "base/error.h"
#include "models/whisper/decoding.h"

namespace fathom::models::whisper {

class WhisperBackend {
 public:
  virtual ~WhisperBackend() = default;
  virtual int vocab_size() const = 0;
  virtual int num_mel_bins() const = 0;
  virtual int max_target_positions() const = 0;
  // Free decoder cache slots now (a job needs `beams` of them to start a window).
  virtual int free_slots() const = 0;
  // Reserves `n` slots, or an error when fewer are free.
  virtual Result<std::vector<int>> acquire_slots(int n) = 0;
  virtual void release_slots(const std::vector<int>& slots) = 0;
  // Runs the encoder on windows[i] ([num_mel_bins, 3000] f32 row-major, one batch) and binds its output
  // (cross-attention keys/values) to every slot of slots[i]; resets those slots' self-attention caches.
  virtual Status encode(const std::vector<std::span<const float>>& windows,
                        const std::vector<std::vector<int>>& slots) = 0;
  // Whether encode_audio() works: the backend computes the 30 s log-mel itself (on its device).
  virtual bool computes_log_mel() const { return false; }
  // encode() with each window given as 16 kHz mono samples (at most 480000, zero-padded to 30 s): the
  // backend computes the log-mel (same features as formats::whisper_log_mel_30s).
  virtual Status encode_audio(const std::vector<std::span<const float>>& samples,
                              const std::vector<std::vector<int>>& slots) {
    (void)samples;
    (void)slots;
    return make_error(ErrorCode::kUnsupported, "this speech backend does not compute log-mel features");
  }
  // One batched decoder call (see DecodeRow): rows.size() * vocab_size() f32 logits in memory of the
  // backend (host), valid and writable until the next decode() call (the logits rules work in place).
  virtual Result<std::span<float>> decode(const std::vector<DecodeRow>& rows) = 0;
};

}  // namespace fathom::models::whisper
