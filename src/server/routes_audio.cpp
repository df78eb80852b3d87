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
#include "server/client_liveness.h"
#include "server/multipart_form.h"
#include "server/routes_audio_format.h"

namespace fathom::server {
namespace {

using models::Task;

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
  const AudioForm r = parse_audio_form(req.files, task);

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
  ClientLiveness client(req);
  const auto started = std::chrono::steady_clock::now();
  while (!handle->done()) {
    if (std::chrono::steady_clock::now() - started > std::chrono::milliseconds(200) && client.gone()) {
      handle->cancel();  // nobody will read the text: free the job's decoder slots
      fail(499, "the client closed the connection; the transcription was cancelled", {}, "client_closed");
    }
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
