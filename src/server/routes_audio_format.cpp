#include "server/routes_audio_format.h"

#include <cmath>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "models/whisper/languages.h"

namespace fathom::server {
namespace {

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Cue text: trimmed, and "-->" can never end a cue early.
std::string cue_text(const std::string& s) {
  std::string t = trim(s);
  for (std::size_t p = t.find("-->"); p != std::string::npos; p = t.find("-->", p)) t.replace(p, 3, "->");
  return t;
}

nlohmann::json usage(double duration) {
  return {{"type", "duration"}, {"seconds", static_cast<int64_t>(std::ceil(std::max(0.0, duration)))}};
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

}  // namespace

std::optional<AudioFormat> parse_audio_format(std::string_view name) {
  if (name == "json") return AudioFormat::kJson;
  if (name == "text") return AudioFormat::kText;
  if (name == "srt") return AudioFormat::kSrt;
  if (name == "vtt") return AudioFormat::kVtt;
  if (name == "verbose_json") return AudioFormat::kVerboseJson;
  return std::nullopt;
}

const char* audio_format_content_type(AudioFormat format) {
  switch (format) {
    case AudioFormat::kJson:
    case AudioFormat::kVerboseJson:
      return "application/json";
    case AudioFormat::kText:
      return "text/plain; charset=utf-8";
    case AudioFormat::kSrt:
      return "application/x-subrip; charset=utf-8";
    case AudioFormat::kVtt:
      return "text/vtt; charset=utf-8";
  }
  return "application/json";
}

std::string format_timestamp(double seconds, char decimal_marker) {
  int64_t ms = static_cast<int64_t>(std::llround(std::max(0.0, seconds) * 1000.0));
  int64_t h = ms / 3600000;
  ms -= h * 3600000;
  int64_t m = ms / 60000;
  ms -= m * 60000;
  int64_t s = ms / 1000;
  ms -= s * 1000;
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%02lld:%02lld:%02lld%c%03lld", static_cast<long long>(h), static_cast<long long>(m),
                static_cast<long long>(s), decimal_marker, static_cast<long long>(ms));
  return buf;
}

std::string format_transcription(const models::Transcription& t, AudioFormat format, std::string_view task) {
  switch (format) {
    case AudioFormat::kJson:
      return nlohmann::json{{"text", t.text}, {"usage", usage(t.duration)}}.dump(-1, ' ', false,
                                                                                 nlohmann::json::error_handler_t::replace);
    case AudioFormat::kText:
      return t.text + "\n";
    case AudioFormat::kSrt: {
      std::string out;
      int n = 0;
      for (const auto& s : t.segments) {
        out += std::to_string(++n) + "\n" + format_timestamp(s.start, ',') + " --> " + format_timestamp(s.end, ',') +
               "\n" + cue_text(s.text) + "\n\n";
      }
      return out;
    }
    case AudioFormat::kVtt: {
      std::string out = "WEBVTT\n\n";
      for (const auto& s : t.segments)
        out += format_timestamp(s.start, '.') + " --> " + format_timestamp(s.end, '.') + "\n" + cue_text(s.text) + "\n\n";
      return out;
    }
    case AudioFormat::kVerboseJson: {
      nlohmann::json segs = nlohmann::json::array();
      for (const auto& s : t.segments) {
        segs.push_back({{"id", s.id},
                        {"seek", s.seek},
                        {"start", round3(s.start)},
                        {"end", round3(s.end)},
                        {"text", s.text},
                        {"tokens", s.tokens},
                        {"temperature", s.temperature},
                        {"avg_logprob", s.avg_logprob},
                        {"compression_ratio", s.compression_ratio},
                        {"no_speech_prob", s.no_speech_prob}});
      }
      std::string language(models::whisper::language_name(t.language));
      if (language.empty()) language = t.language.empty() ? "english" : t.language;
      return nlohmann::json{{"task", std::string(task)},
                            {"language", language},
                            {"duration", round3(t.duration)},
                            {"text", t.text},
                            {"segments", segs},
                            {"usage", usage(t.duration)}}
          .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return {};
}

}  // namespace fathom::server
