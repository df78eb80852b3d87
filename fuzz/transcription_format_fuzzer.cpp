// Fuzzes the transcription response formats (json, text, srt, vtt, verbose_json) on transcriptions made
// of real Whisper-tokenizer output: segment texts are decodes of fuzzed token ids, as the decoder produces
// them, and times, log-probabilities and ratios are fuzzed (finite, non-negative times as the decoder gives).
// Input: byte 0 the format, then per segment: start/end (u16 centiseconds), a token count and u16 ids.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string_view>

#include "formats/tokenizer/tokenizer.h"
#include "fuzz_support.h"
#include "models/model.h"
#include "server/routes_audio_format.h"

namespace {

const fathom::formats::Tokenizer& whisper_tokenizer() {
  static const auto tok = [] {
    auto path = fathom::fuzz::source_dir() / "tests/fixtures/models/whisper-tiny-random-f32/tokenizer.json";
    auto t = fathom::formats::Tokenizer::load(path);
    if (!t.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), t.error().message.c_str());
      std::abort();
    }
    return t.value();
  }();
  return *tok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& tok = whisper_tokenizer();
  fathom::fuzz::Reader in(data, size);
  const uint8_t choice = in.byte();
  fathom::models::Transcription t;
  t.language = (choice & 8) ? "en" : "";
  t.language_prob = (choice & 16) ? 0.5 : 1.0;
  double clock = 0;
  while (in.size() >= 5 && t.segments.size() < 64) {
    fathom::models::SpeechSegment s;
    s.id = static_cast<int>(t.segments.size());
    const double a = (in.byte() | (in.byte() << 8)) / 100.0;
    const double b = (in.byte() | (in.byte() << 8)) / 100.0;
    s.start = clock + a;
    s.end = s.start + b;
    clock = s.start;
    const int n = in.byte() % 32;
    for (int k = 0; k < n && in.size() >= 2; ++k)
      s.tokens.push_back(static_cast<int32_t>((in.byte() | (in.byte() << 8)) % tok.vocab_size()));
    fathom::formats::DecodeOptions options;
    options.skip_special_tokens = true;
    auto text = tok.decode(s.tokens, options);
    if (!text.ok()) continue;
    s.text = *text;
    s.avg_logprob = (n % 3 == 0) ? -std::numeric_limits<double>::infinity() : -0.25 * n;
    s.compression_ratio = n / 3.0;
    s.no_speech_prob = (n % 2) ? 0.0 : 1.0;
    t.text += s.text;
    t.tokens.insert(t.tokens.end(), s.tokens.begin(), s.tokens.end());
    t.segments.push_back(std::move(s));
  }
  t.duration = clock;
  static constexpr std::string_view kNames[] = {"json", "text", "srt", "vtt", "verbose_json"};
  auto format = fathom::server::parse_audio_format(kNames[choice % 5]);
  if (!format) std::abort();
  (void)fathom::server::format_transcription(t, *format, (choice & 32) ? "translate" : "transcribe");
  (void)fathom::server::audio_format_content_type(*format);
  (void)fathom::server::format_timestamp(clock, (choice & 64) ? ',' : '.');
  return 0;
}
