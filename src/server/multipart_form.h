#pragma once
// The option fields of a POST /v1/audio/transcriptions or /translations multipart form, turned into a typed
// request, apart from HTTP so it can be tested and fuzzed directly.
//
// Input: the form's fields as httplib parsed them (name -> {content, filename, content_type}; a name may
// repeat, e.g. timestamp_granularities[]). Only the option fields are read here: language, prompt,
// response_format, temperature, top_p, seed, max_completion_tokens, use_beam_search, n,
// timestamp_granularities[] (or timestamp_granularities), stream. `model` and `file` are the route's
// (routes_audio.cpp): they need the model registry and the audio decoder. Unknown fields are ignored.
// Numbers and booleans may carry surrounding whitespace; an empty value means "not given" except for
// `stream` and `use_beam_search`, where it means false.
//
// Errors: every invalid value throws ApiException (server/http_errors.h) with status 400, `param` = the
// field's name and `code` "invalid_value" (or "unsupported_value" for timestamp_granularities[]=word); the
// message quotes the value and states the allowed range. Nothing else is thrown.
// Guarantees on success: temperature in [0, 1], top_p in (0, 1], beams in [1, 64] (> 1 only with
// use_beam_search), max_new_tokens 0 (model default) or in [1, 100000], stream only with json or text,
// timestamps on for verbose_json, srt and vtt (segment granularity needs verbose_json).
// Thread-safety: a pure function.
#include <string>

#include <httplib.h>

#include "models/model.h"
#include "server/routes_audio_format.h"

namespace fathom::server {

struct AudioForm {
  AudioFormat format = AudioFormat::kJson;
  models::SpeechOptions options;  // options.translate is set from the task
  bool stream = false;
};

// `task` is kTranscribe or kTranslate (sets options.translate).
AudioForm parse_audio_form(const httplib::MultipartFormDataMap& fields, models::Task task);

}  // namespace fathom::server
