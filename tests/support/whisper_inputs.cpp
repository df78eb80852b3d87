#include "support/whisper_inputs.h"

#include <gtest/gtest.h>

#include "formats/audio/audio.h"
#include "support/files.h"
#include "support/paths.h"

namespace fathom::testing {

JfkInput jfk_input(int n_mels) {
  JfkInput in;
  auto audio = formats::decode_audio(read_bytes(shared_dir() / "assets/whisper/jfk.wav"));
  EXPECT_TRUE(audio.ok()) << (audio.ok() ? "" : audio.error().message);
  if (!audio.ok()) return in;
  in.duration = audio->duration_seconds();
  in.samples = audio->samples;
  auto mel = formats::whisper_log_mel_30s(audio->samples, n_mels);
  EXPECT_TRUE(mel.ok()) << (mel.ok() ? "" : mel.error().message);
  if (mel.ok()) in.mel = std::move(mel).value();
  return in;
}

LoadedWhisper load_whisper_fixture(const std::string& name, const models::LoadOptions& options, int slots) {
  LoadedWhisper l;
  const auto dir = fixture("models/" + name);
  l.reference = read_json(fixture("models/" + name + ".reference.json"));
  auto m = models::whisper::WhisperModel::load(dir, read_json(dir / "config.json"), options,
                                               models::whisper::whisper_model_info(), slots);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  if (!m.ok()) return l;
  l.model = std::move(m).value();
  JfkInput jfk = jfk_input(l.model->config().num_mel_bins);
  l.duration = jfk.duration;
  l.samples = std::move(jfk.samples);
  l.mel = std::move(jfk.mel);
  return l;
}

std::string whisper_case_name(const ::testing::TestParamInfo<WhisperCase>& info) {
  std::string s = info.param.fixture + "_" + std::string(dtype_name(info.param.dtype));
  for (auto& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

models::SpeechOptions speech_options_of(const nlohmann::json& kwargs, int max_new_tokens) {
  models::SpeechOptions o;
  if (kwargs.contains("language")) o.language = kwargs["language"].get<std::string>();
  o.translate = kwargs.value("task", "transcribe") == "translate";
  o.timestamps = kwargs.value("return_timestamps", false);
  o.max_new_tokens = max_new_tokens;
  return o;
}

}  // namespace fathom::testing
