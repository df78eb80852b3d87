#pragma once
// POST /v1/audio/transcriptions and POST /v1/audio/translations (OpenAI-compatible, multipart/form-data).
//
// Fields: file (required), model (required), language (source language; also on translations), prompt,
// response_format json|text|srt|verbose_json|vtt, temperature (0..1), timestamp_granularities[] (segment),
// stream (SSE: transcript.text.delta events, then transcript.text.done; json/text formats only).
// Extras: max_completion_tokens (per 30 s window), seed, top_p, use_beam_search + n (beam width).
// Errors (OpenAI shape): missing/empty/undecodable file 400, file over the upload limit 413 (naming it),
// unknown model 404, model without the task 400 (naming what it supports), bad parameters 400.
//
// The audio is decoded and turned into a log-mel on the HTTP thread; decoding runs on the device worker
// through the model's SpeechScheduler (continuous batching across requests).
#include <cstddef>

#include "formats/audio/audio.h"
#include "server/router.h"

namespace fathom::server {

// Mounts the audio routes for the tasks in ctx (transcriptions for transcribe, translations for translate).
void register_audio_routes(RouteContext& ctx);

// Upload and duration limits of the audio routes (OpenAI's 25 MB by default).
formats::AudioLimits audio_route_limits();

}  // namespace fathom::server
