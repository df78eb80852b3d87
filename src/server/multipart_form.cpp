#include "server/multipart_form.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "server/http_errors.h"

namespace fathom::server {
namespace {

using models::Task;

std::optional<std::string> field(const httplib::MultipartFormDataMap& fields, const std::string& name) {
  auto it = fields.find(name);
  if (it == fields.end()) return std::nullopt;
  return it->second.content;
}

std::string trim(const std::string& s) {
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

}  // namespace

AudioForm parse_audio_form(const httplib::MultipartFormDataMap& fields, Task task) {
  AudioForm r;
  r.options.translate = task == Task::kTranslate;
  if (auto v = field(fields, "language")) r.options.language = trim(*v);
  if (auto v = field(fields, "prompt")) r.options.prompt = *v;
  if (auto v = field(fields, "response_format"); v && !trim(*v).empty()) {
    auto f = parse_audio_format(trim(*v));
    if (!f)
      fail(400, "`response_format` must be one of json, text, srt, verbose_json, vtt; got '" + *v + "'",
           "response_format", "invalid_value");
    r.format = *f;
  }
  // `temperature`: a number, or a comma-separated increasing list (the fallback schedule, openai-whisper's
  // --temperature "0,0.2,..."); `temperature_increment_on_fallback` builds the schedule from the number up to 1.
  if (auto v = field(fields, "temperature"); v && !trim(*v).empty()) {
    std::vector<float> schedule;
    const std::string& list = *v;
    for (std::size_t at = 0; at != std::string::npos;) {
      const std::size_t comma = list.find(',', at);
      const std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      const double t = parse_number("temperature", item);
      if (t < 0.0 || t > 1.0)
        fail(400, "`temperature` values must be between 0 and 1, got " + trim(item), "temperature", "invalid_value");
      if (!schedule.empty() && !(t > schedule.back()))
        fail(400, "a `temperature` fallback schedule must increase, got '" + trim(*v) + "'", "temperature", "invalid_value");
      schedule.push_back(static_cast<float>(t));
      at = comma == std::string::npos ? comma : comma + 1;
    }
    r.options.temperature = schedule[0];
    if (schedule.size() >= 2) r.options.temperatures = std::move(schedule);
  }
  if (auto v = field(fields, "temperature_increment_on_fallback"); v && !trim(*v).empty()) {
    const double inc = parse_number("temperature_increment_on_fallback", *v);
    if (!(inc > 0.0 && inc <= 1.0))
      fail(400, "`temperature_increment_on_fallback` must be in (0, 1], got " + trim(*v),
           "temperature_increment_on_fallback", "invalid_value");
    if (!r.options.temperatures.empty())
      fail(400, "give either a `temperature` list or `temperature_increment_on_fallback`, not both",
           "temperature_increment_on_fallback", "invalid_value");
    std::vector<float> schedule;
    for (int i = 0;; ++i) {
      const double t = r.options.temperature + i * inc;
      if (t > 1.0 + 1e-6) break;
      schedule.push_back(static_cast<float>(std::min(t, 1.0)));
    }
    if (schedule.size() >= 2) r.options.temperatures = std::move(schedule);
  }
  // Fallback thresholds (openai-whisper's defaults 2.4, -1.0, 0.6; "none" turns one off).
  const auto threshold = [&](const char* name, std::optional<double>& out) {
    if (auto v = field(fields, name); v && !trim(*v).empty()) {
      if (trim(*v) == "none" || trim(*v) == "null") out.reset();
      else out = parse_number(name, *v);
      if (r.options.temperatures.empty())
        fail(400, std::string("`") + name + "` applies to temperature fallback only; give `temperature` as a list "
                  "(e.g. 0,0.2,0.4,0.6,0.8,1) or `temperature_increment_on_fallback`", name, "invalid_value");
    }
  };
  threshold("compression_ratio_threshold", r.options.compression_ratio_threshold);
  threshold("logprob_threshold", r.options.logprob_threshold);
  threshold("no_speech_threshold", r.options.no_speech_threshold);
  if (auto v = field(fields, "top_p"); v && !trim(*v).empty()) {
    const double p = parse_number("top_p", *v);
    if (!(p > 0.0 && p <= 1.0)) fail(400, "`top_p` must be in (0, 1], got " + trim(*v), "top_p", "invalid_value");
    r.options.top_p = static_cast<float>(p);
  }
  if (auto v = field(fields, "seed"); v && !trim(*v).empty())
    r.options.seed = static_cast<uint64_t>(parse_integer("seed", *v));
  if (auto v = field(fields, "max_completion_tokens"); v && !trim(*v).empty()) {
    const long long n = parse_integer("max_completion_tokens", *v);
    if (n < 1 || n > 100000)
      fail(400, "`max_completion_tokens` must be a positive integer up to 100000, got " + trim(*v),
           "max_completion_tokens", "invalid_value");
    r.options.max_new_tokens = static_cast<int>(n);
  }
  const auto beam_field = field(fields, "use_beam_search");
  const bool beam = beam_field ? parse_bool("use_beam_search", *beam_field) : false;
  int n = 1;
  if (auto v = field(fields, "n"); v && !trim(*v).empty()) {
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
    auto range = fields.equal_range(key);
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
  if (auto v = field(fields, "stream")) r.stream = parse_bool("stream", *v);
  if (r.stream && r.format != AudioFormat::kJson && r.format != AudioFormat::kText)
    fail(400, "`stream` is supported with response_format json or text only", "stream", "invalid_value");
  return r;
}

}  // namespace fathom::server
