#include "server/routes_audio.h"

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "formats/mel/log_mel.h"
#include "server/routes_audio_format.h"

namespace fathom::server {
namespace {

using models::Task;

struct AudioRequest {
  std::string model;
  AudioFormat format = AudioFormat::kJson;
  models::SpeechOptions options;
  bool stream = false;
};

std::optional<std::string> field(const httplib::Request& req, const std::string& name) {
  if (!req.has_file(name)) return std::nullopt;
  return req.get_file_value(name).content;
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

double parse_number(const std::string& name, const std::string& text) {
  const std::string t = trim(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size() || errno == ERANGE || !std::isfinite(v))
    fail(400, "`" + name + "` must be a number, got '" + text + "'", name, "invalid_value");
  return v;
}

long long parse_integer(const std::string& name, const std::string& text) {
  const std::string t = trim(text);
  long long v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || ec != std::errc() || p != t.data() + t.size())
    fail(400, "`" + name + "` must be an integer, got '" + text + "'", name, "invalid_value");
  return v;
}

bool parse_bool(const std::string& name, const std::string& text) {
  const std::string t = trim(text);
  if (t == "true" || t == "True" || t == "1") return true;
  if (t == "false" || t == "False" || t == "0" || t.empty()) return false;
  fail(400, "`" + name + "` must be true or false, got '" + text + "'", name, "invalid_value");
}

AudioRequest parse_fields(const httplib::Request& req, Task task) {
  AudioRequest r;
  r.options.translate = task == Task::kTranslate;
  if (auto v = field(req, "language")) r.options.language = trim(*v);
  if (auto v = field(req, "prompt")) r.options.prompt = *v;
  if (auto v = field(req, "response_format"); v && !trim(*v).empty()) {
    auto f = parse_audio_format(trim(*v));
    if (!f)
      fail(400, "`response_format` must be one of json, text, srt, verbose_json, vtt; got '" + *v + "'",
           "response_format", "invalid_value");
    r.format = *f;
  }
  if (auto v = field(req, "temperature"); v && !trim(*v).empty()) {
    const double t = parse_number("temperature", *v);
    if (t < 0.0 || t > 1.0)
      fail(400, "`temperature` must be between 0 and 1, got " + trim(*v), "temperature", "invalid_value");
    r.options.temperature = static_cast<float>(t);
  }
  if (auto v = field(req, "top_p"); v && !trim(*v).empty()) {
    const double p = parse_number("top_p", *v);
    if (!(p > 0.0 && p <= 1.0)) fail(400, "`top_p` must be in (0, 1], got " + trim(*v), "top_p", "invalid_value");
    r.options.top_p = static_cast<float>(p);
  }
  if (auto v = field(req, "seed"); v && !trim(*v).empty())
    r.options.seed = static_cast<uint64_t>(parse_integer("seed", *v));
  if (auto v = field(req, "max_completion_tokens"); v && !trim(*v).empty()) {
    const long long n = parse_integer("max_completion_tokens", *v);
    if (n < 1 || n > 100000)
      fail(400, "`max_completion_tokens` must be a positive integer, got " + trim(*v), "max_completion_tokens",
           "invalid_value");
    r.options.max_new_tokens = static_cast<int>(n);
  }
  const bool beam = field(req, "use_beam_search") ? parse_bool("use_beam_search", *field(req, "use_beam_search")) : false;
  int n = 1;
  if (auto v = field(req, "n"); v && !trim(*v).empty()) {
    const long long k = parse_integer("n", *v);
    if (k < 1 || k > 64) fail(400, "`n` must be between 1 and 64, got " + trim(*v), "n", "invalid_value");
    n = static_cast<int>(k);
  } else if (beam) {
    n = 5;
  }
  if (n > 1 && !beam)
    fail(400, "`n` > 1 needs `use_beam_search`: only the best hypothesis is returned", "n", "invalid_value");
  r.options.beams = beam ? n : 1;
  bool segments = false;
  for (const char* key : {"timestamp_granularities[]", "timestamp_granularities"}) {
    auto range = req.files.equal_range(key);
    for (auto it = range.first; it != range.second; ++it) {
      const std::string g = trim(it->second.content);
      if (g == "segment") {
        segments = true;
      } else if (g == "word") {
        fail(400, "word-level timestamps are not supported; use timestamp_granularities[]=segment", key,
             "unsupported_value");
      } else {
        fail(400, "`timestamp_granularities[]` values must be 'segment' or 'word', got '" + g + "'", key,
             "invalid_value");
      }
    }
  }
  if (segments && r.format != AudioFormat::kVerboseJson)
    fail(400, "`timestamp_granularities[]` needs response_format verbose_json", "timestamp_granularities[]",
         "invalid_value");
  r.options.timestamps = segments || r.format == AudioFormat::kVerboseJson || r.format == AudioFormat::kSrt ||
                         r.format == AudioFormat::kVtt;
  if (auto v = field(req, "stream")) r.stream = parse_bool("stream", *v);
  if (r.stream && r.format != AudioFormat::kJson && r.format != AudioFormat::kText)
    fail(400, "`stream` is supported with response_format json or text only", "stream", "invalid_value");
  return r;
}

std::string sse_event(const nlohmann::json& j) {
  return "data: " + j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n";
}

void stream_response(httplib::Response& res, std::shared_ptr<engine::SpeechRequest> request) {
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  auto sent = std::make_shared<std::string>();  // text already sent as deltas
  res.set_chunked_content_provider(
      "text/event-stream", [request, sent](std::size_t, httplib::DataSink& sink) -> bool {
        // Runs after the handler returned: nothing here may throw.
        try {
          while (true) {
            request->wait(sent->size(), std::chrono::milliseconds(250));
            const bool done = request->done();
            std::string text = request->text_so_far();
            if (done) {
              auto r = request->result();
              if (!r.ok()) {
                const std::string ev = sse_event({{"type", "error"}, {"error", error_json(to_api_error(r.error()))["error"]}});
                sink.write(ev.data(), ev.size());
                sink.done();
                return true;
              }
              text = r->text;
            }
            if (text.size() > sent->size() && text.compare(0, sent->size(), *sent) == 0) {
              const std::string ev =
                  sse_event({{"type", "transcript.text.delta"}, {"delta", text.substr(sent->size())}});
              if (!sink.write(ev.data(), ev.size())) {
                request->cancel();
                return false;
              }
              *sent = text;
            }
            if (done) {
              const std::string ev = sse_event({{"type", "transcript.text.done"}, {"text", text}});
              sink.write(ev.data(), ev.size());
              sink.done();
              return true;
            }
            if (sink.is_writable && !sink.is_writable()) {
              request->cancel();
              return false;
            }
          }
        } catch (...) {
          request->cancel();
          return false;
        }
      });
}

void handle_audio(const RouteContext& ctx, const httplib::Request& req, httplib::Response& res, Task task) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(ctx.options.request_timeout_s));
  const std::string endpoint = task == Task::kTranslate ? "/v1/audio/translations" : "/v1/audio/transcriptions";
  if (!req.is_multipart_form_data())
    fail(400, endpoint + " expects a multipart/form-data body with `file` and `model` fields", {}, "invalid_content_type");
  auto model_name = field(req, "model");
  if (!model_name || trim(*model_name).empty()) fail(400, "`model` is required", "model", "missing_field");
  auto model = resolve_model(ctx, trim(*model_name), task, endpoint);
  if (!model->speech_scheduler)
    fail(500, "model '" + model->name + "' declares " + models::task_name(task) + " but has no speech queue", "model",
         "internal");
  if (!req.has_file("file")) fail(400, "`file` is required (the audio to transcribe)", "file", "missing_field");
  const httplib::MultipartFormData file = req.get_file_value("file");
  if (file.content.empty()) fail(400, "`file` is empty", "file", "empty_file");
  const formats::AudioLimits limits = audio_route_limits();
  if (file.content.size() > limits.max_bytes)
    fail(413, "`file` is " + std::to_string(file.content.size()) + " bytes; the limit is " +
                  std::to_string(limits.max_bytes) + " bytes",
         "file", "file_too_large");
  AudioRequest r = parse_fields(req, task);
  r.model = model->name;

  auto audio = formats::decode_audio(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(file.content.data()), file.content.size()), limits);
  if (!audio.ok()) {
    Error e = audio.error();
    e.param = "file";
    if (e.code == ErrorCode::kTooLarge) fail(413, e.message, "file", "audio_too_long");
    if (e.code == ErrorCode::kUnsupported) e.code = ErrorCode::kInvalidArgument;
    e.message = "could not decode `file`" + (file.filename.empty() ? std::string() : " '" + file.filename + "'") +
                ": " + e.message;
    fail(e);
  }
  auto request = model->speech_scheduler->start(std::move(audio.value().samples), r.options);
  if (!request.ok()) fail(request.error());
  if (r.stream) {
    stream_response(res, std::move(request).value());
    return;
  }
  auto& handle = request.value();
  while (!handle->done()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      handle->cancel();  // the job ends at its next step and frees its decoder slots
      char limit[32];
      std::snprintf(limit, sizeof(limit), "%g", ctx.options.request_timeout_s);
      fail(504,
           std::string("the transcription did not finish within ") + limit +
               " s (--request-timeout-seconds); it was cancelled",
           {}, "timeout");
    }
    handle->wait(std::numeric_limits<std::size_t>::max(), std::chrono::milliseconds(100));
  }
  auto result = handle->result();
  if (!result.ok()) fail(result.error());
  res.status = 200;
  res.set_content(format_transcription(result.value(), r.format, models::task_name(task)),
                  audio_format_content_type(r.format));
}

}  // namespace

formats::AudioLimits audio_route_limits() { return formats::AudioLimits{}; }

void register_audio_routes(RouteContext& ctx) {
  if (ctx.serves(Task::kTranscribe))
    ctx.router.post("/v1/audio/transcriptions", [&ctx](const httplib::Request& req, httplib::Response& res) {
      handle_audio(ctx, req, res, Task::kTranscribe);
    });
  if (ctx.serves(Task::kTranslate))
    ctx.router.post("/v1/audio/translations", [&ctx](const httplib::Request& req, httplib::Response& res) {
      handle_audio(ctx, req, res, Task::kTranslate);
    });
}

}  // namespace fathom::server
