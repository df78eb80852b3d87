#pragma once
// Response bodies of /v1/audio/transcriptions and /v1/audio/translations in OpenAI's formats.
// Pure functions of a Transcription; used by the HTTP routes and the offline `fathom transcribe`.
#include <optional>
#include <string>
#include <string_view>

#include "models/model.h"

namespace fathom::server {

enum class AudioFormat { kJson, kText, kSrt, kVtt, kVerboseJson };

// "json" | "text" | "srt" | "vtt" | "verbose_json"; nullopt otherwise.
std::optional<AudioFormat> parse_audio_format(std::string_view name);
// The Content-Type of a format ("application/json", "text/plain; charset=utf-8", "text/vtt; ...").
const char* audio_format_content_type(AudioFormat format);

// `task`: "transcribe" or "translate" (verbose_json's "task").
std::string format_transcription(const models::Transcription& t, AudioFormat format, std::string_view task);

// "HH:MM:SS,mmm" (srt) or "HH:MM:SS.mmm" (vtt) of `seconds` (rounded to milliseconds, >= 0).
std::string format_timestamp(double seconds, char decimal_marker);

}  // namespace fathom::server
