// Response formats of the audio endpoints (json, text, srt, vtt, verbose_json).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/routes_audio_format.h"

namespace fathom::server {
namespace {

models::Transcription sample() {
  models::Transcription t;
  t.text = " Ask not --> what.";
  t.language = "en";
  t.duration = 11.0;
  models::SpeechSegment a;
  a.id = 0;
  a.start = 0.0;
  a.end = 3661.5;
  a.text = " Ask not --> what.";
  a.tokens = {50364, 1, 2};
  a.avg_logprob = -0.25;
  a.compression_ratio = 1.1;
  a.no_speech_prob = 0.01;
  t.segments.push_back(a);
  models::SpeechSegment b = a;
  b.id = 1;
  b.seek = 300;
  b.start = 3661.5;
  b.end = 3662.0004;
  b.text = " Second.";
  t.segments.push_back(b);
  return t;
}

TEST(WhisperFormat, Timestamps) {
  EXPECT_EQ(format_timestamp(0.0, ','), "00:00:00,000");
  EXPECT_EQ(format_timestamp(3661.5, ','), "01:01:01,500");
  EXPECT_EQ(format_timestamp(59.9996, '.'), "00:01:00.000");
  EXPECT_EQ(format_timestamp(-1.0, '.'), "00:00:00.000");
}

TEST(WhisperFormat, JsonAndText) {
  auto j = nlohmann::json::parse(format_transcription(sample(), AudioFormat::kJson, "transcribe"));
  EXPECT_EQ(j["text"], " Ask not --> what.");
  EXPECT_EQ(j["usage"]["type"], "duration");
  EXPECT_EQ(j["usage"]["seconds"], 11);
  EXPECT_EQ(format_transcription(sample(), AudioFormat::kText, "transcribe"), " Ask not --> what.\n");
}

TEST(WhisperFormat, SrtAndVtt) {
  EXPECT_EQ(format_transcription(sample(), AudioFormat::kSrt, "transcribe"),
            "1\n00:00:00,000 --> 01:01:01,500\nAsk not -> what.\n\n2\n01:01:01,500 --> 01:01:02,000\nSecond.\n\n");
  EXPECT_EQ(format_transcription(sample(), AudioFormat::kVtt, "transcribe"),
            "WEBVTT\n\n00:00:00.000 --> 01:01:01.500\nAsk not -> what.\n\n01:01:01.500 --> 01:01:02.000\nSecond.\n\n");
}

TEST(WhisperFormat, VerboseJson) {
  auto j = nlohmann::json::parse(format_transcription(sample(), AudioFormat::kVerboseJson, "translate"));
  EXPECT_EQ(j["task"], "translate");
  EXPECT_EQ(j["language"], "english");
  EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 11.0);
  ASSERT_EQ(j["segments"].size(), 2u);
  const auto& s = j["segments"][1];
  EXPECT_EQ(s["id"], 1);
  EXPECT_EQ(s["seek"], 300);
  EXPECT_DOUBLE_EQ(s["end"].get<double>(), 3662.0);
  EXPECT_EQ(s["tokens"], (std::vector<int>{50364, 1, 2}));
  for (const char* k : {"temperature", "avg_logprob", "compression_ratio", "no_speech_prob"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_EQ(j["usage"]["seconds"], 11);
}

TEST(WhisperFormat, ParseNames) {
  EXPECT_EQ(parse_audio_format("verbose_json"), AudioFormat::kVerboseJson);
  EXPECT_EQ(parse_audio_format("srt"), AudioFormat::kSrt);
  EXPECT_FALSE(parse_audio_format("xml").has_value());
  EXPECT_STREQ(audio_format_content_type(AudioFormat::kVtt), "text/vtt; charset=utf-8");
}

}  // namespace
}  // namespace fathom::server
