#pragma once
// Inputs shared by the Whisper tests: the jfk clip of the shared assets, a fixture model loaded with its
// reference, and the fixture references' generate() settings.
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "formats/mel/log_mel.h"
#include "models/model.h"
#include "models/whisper/whisper_model.h"

namespace fathom::testing {

struct JfkInput {
  std::vector<float> samples;  // 16 kHz mono
  double duration = 0;         // seconds
  formats::LogMel mel;         // its 30 s log-mel, [n_mels, 3000]
};

// ../shared/assets/whisper/jfk.wav decoded and its 30 s log-mel with `n_mels` bins; a failure is a
// (non-fatal) gtest failure and leaves the fields empty.
JfkInput jfk_input(int n_mels);

// A Whisper fixture (directory name under tests/fixtures/models) loaded with `options` and `slots`
// decoding slots (0: the model's default), its transformers reference, and jfk_input() at the model's mel
// bin count. A failed load is a (non-fatal) gtest failure and leaves `model` null.
struct LoadedWhisper {
  std::unique_ptr<models::whisper::WhisperModel> model;
  nlohmann::json reference;
  std::vector<float> samples;
  formats::LogMel mel;
  double duration = 0;
};
LoadedWhisper load_whisper_fixture(const std::string& name, const models::LoadOptions& options, int slots = 0);

// A Whisper fixture (its directory name under tests/fixtures/models) and the dtype a test loads it in: the
// parameter of the CUDA Whisper tests.
struct WhisperCase {
  std::string fixture;
  DType dtype;
};
// "whisper_tiny_random_f32_float16": a gtest parameter name for `info`.
std::string whisper_case_name(const ::testing::TestParamInfo<WhisperCase>& info);

// SpeechOptions for a reference case's generate() kwargs (language, task, return_timestamps).
models::SpeechOptions speech_options_of(const nlohmann::json& kwargs, int max_new_tokens);

}  // namespace fathom::testing
