#pragma once
// Whisper checkpoints of many shapes (scripts/fixtures/make_whisper_unseen.py): the committed small ones
// under tests/fixtures/models/whisper-unseen/ and, optionally, more generated where the tests run.
//
// A checkpoint lives in ROOT/<name>/ (no tokenizer.json) beside ROOT/<name>.reference.json, whose
// "tokenizer" names the Whisper tokenizer it was made with ("multilingual" or "v3"); optional debugging
// dumps ROOT/<name>.jfk.{mel,encoder,sot-logits}.f32 hold the feature extractor's log-mel, the encoder
// output and the logits at <|startoftranscript|> as raw little-endian f32.
#include <filesystem>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "base/dtype.h"
#include "models/model.h"
#include "models/whisper/whisper_model.h"

namespace fathom::testing {

struct UnseenWhisper {
  std::string name;            // checkpoint directory name
  std::filesystem::path root;  // folder holding <name>/ and <name>.reference.json
};

inline void PrintTo(const UnseenWhisper& c, std::ostream* os) { *os << c.name; }

// The committed checkpoints, then every checkpoint with a reference under the folders listed (':'
// separated) in the environment variable FATHOM_WHISPER_UNSEEN_DIRS (e.g. the issue checkpoints made by
// `make_whisper_unseen.py --set large --dump issue`). Evaluated when the test parameters are generated.
std::vector<UnseenWhisper> unseen_whisper_checkpoints();

// A model directory for `c`: a fresh temporary folder with links to the checkpoint's files and to the
// committed fixture tokenizer (tokenizer.json) its reference names, removed when the process exits.
// Empty (and a gtest failure) on error.
std::filesystem::path assemble_unseen_whisper(const UnseenWhisper& c);

nlohmann::json unseen_reference(const UnseenWhisper& c);

// ROOT/<name>.<suffix> as f32 values; empty when the dump is absent.
std::vector<float> unseen_dump(const UnseenWhisper& c, const std::string& suffix);

// "wu_v3_bf16_hd24": a gtest parameter name.
std::string unseen_name(const UnseenWhisper& c);

// The raw logits (no logits rules) after `prompt` over the 30 s window `mel` ([n_mels, 3000]), from one
// encode and one decode call of `model`'s network on a slot of its own. Empty (and a gtest failure) on error.
std::vector<float> whisper_prompt_logits(models::whisper::WhisperModel& model, const std::vector<float>& mel,
                                         const std::vector<int32_t>& prompt);

// The 30 s log-mel of the first `samples` samples of jfk.wav (all of it when larger), and its duration.
struct ClipInput {
  std::vector<float> mel;  // [n_mels, 3000]
  double duration = 0;
};
ClipInput jfk_clip(int n_mels, std::size_t samples);

// Parameters of the CUDA tests: a checkpoint and the compute dtype it is loaded in.
struct UnseenWhisperCase {
  UnseenWhisper checkpoint;
  DType dtype;
};
inline void PrintTo(const UnseenWhisperCase& c, std::ostream* os) {
  *os << c.checkpoint.name << " " << dtype_name(c.dtype);
}
std::vector<UnseenWhisperCase> unseen_whisper_cases(const std::vector<DType>& dtypes);

}  // namespace fathom::testing
