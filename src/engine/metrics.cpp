#include "engine/metrics.h"

#include <cmath>
#include <cstdio>

namespace fathom::engine {
namespace {

// From 100 µs (a short embedding request on a GPU) to 5 minutes (a long transcription), dense below 10 ms
// where embedding requests and device steps fall (quantiles interpolated inside a bucket stay close).
const std::vector<double> kLatencyBounds = {0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003,
                                            0.005,  0.0075,  0.01,   0.025,   0.05,  0.1,    0.25,  0.5,
                                            1,      2.5,     5,      10,      30,    60,     120,   300};
const std::vector<double> kBatchBounds = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string label(const std::string& key, const std::string& value) {
  return key + "=\"" + escape_label_value(value) + "\"";
}

void header(std::string& out, const std::string& name, const char* type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string escape_label_value(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void Histogram::observe(double value) {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;
  counts_[i]++;
  sum_ += value;
  count_++;
}

void Histogram::render(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string prefix = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? number(bounds_[i]) : "+Inf";
    out += name + "_bucket{" + prefix + "le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(sum_) + "\n";
  out += name + "_count" + braces + " " + std::to_string(count_) + "\n";
}

Metrics& Metrics::global() {
  static Metrics* metrics = new Metrics();  // never destroyed: threads may record during exit
  return *metrics;
}

void Metrics::record_request(const std::string& route, const std::string& model, int status, double seconds) {
  std::lock_guard lock(mu_);
  requests_[{route, model, status}]++;
  if (status >= 400) errors_[status]++;
  latency_.try_emplace({route, model}, kLatencyBounds).first->second.observe(seconds);
}

void Metrics::record_step(const std::string& model, const Step& step) {
  std::lock_guard lock(mu_);
  if (step.sequences > 0) {
    batch_sizes_.try_emplace(model, kBatchBounds).first->second.observe(static_cast<double>(step.sequences));
    tokens_[model] += step.tokens;
  }
  step_seconds_.try_emplace(model, kLatencyBounds).first->second.observe(step.seconds);
  Histogram& waits = queue_wait_.try_emplace(model, kLatencyBounds).first->second;
  for (double w : step.queue_waits) waits.observe(w);
}

void Metrics::add_audio_seconds(const std::string& model, double seconds) {
  if (!(seconds > 0)) return;
  std::lock_guard lock(mu_);
  audio_seconds_[model] += seconds;
}

uint64_t Metrics::requests(const std::string& route, const std::string& model, int status) const {
  std::lock_guard lock(mu_);
  auto it = requests_.find({route, model, status});
  return it == requests_.end() ? 0 : it->second;
}

uint64_t Metrics::tokens(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(model);
  return it == tokens_.end() ? 0 : it->second;
}

uint64_t Metrics::batches(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = batch_sizes_.find(model);
  return it == batch_sizes_.end() ? 0 : it->second.count();
}

uint64_t Metrics::steps(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = step_seconds_.find(model);
  return it == step_seconds_.end() ? 0 : it->second.count();
}

uint64_t Metrics::queue_waits(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = queue_wait_.find(model);
  return it == queue_wait_.end() ? 0 : it->second.count();
}

double Metrics::audio_seconds(const std::string& model) const {
  std::lock_guard lock(mu_);
  auto it = audio_seconds_.find(model);
  return it == audio_seconds_.end() ? 0.0 : it->second;
}

std::string Metrics::render(const std::vector<GaugeSample>& gauges) const {
  std::string out;
  {
    std::lock_guard lock(mu_);
    header(out, "fathom_requests_total", "counter", "HTTP requests answered, by route, model and status");
    for (const auto& [key, n] : requests_) {
      const auto& [route, model, status] = key;
      out += "fathom_requests_total{" + label("route", route) + "," + label("model", model) + "," +
             label("status", std::to_string(status)) + "} " + std::to_string(n) + "\n";
    }
    header(out, "fathom_request_errors_total", "counter", "HTTP requests answered with a 4xx or 5xx status");
    for (const auto& [status, n] : errors_) {
      out += "fathom_request_errors_total{" + label("status", std::to_string(status)) + "} " + std::to_string(n) + "\n";
    }
    header(out, "fathom_request_duration_seconds", "histogram", "HTTP request latency in seconds, by route and model");
    for (const auto& [key, h] : latency_)
      h.render(out, "fathom_request_duration_seconds", label("route", key.first) + "," + label("model", key.second));
    header(out, "fathom_queue_wait_seconds", "histogram",
           "Seconds an input waited in its model's queue before a device step started it, by model");
    for (const auto& [model, h] : queue_wait_) h.render(out, "fathom_queue_wait_seconds", label("model", model));
    header(out, "fathom_step_duration_seconds", "histogram", "Wall time of one device step of a model, by model");
    for (const auto& [model, h] : step_seconds_) h.render(out, "fathom_step_duration_seconds", label("model", model));
    header(out, "fathom_batch_size", "histogram", "Sequences per batch run on a device, by model");
    for (const auto& [model, h] : batch_sizes_) h.render(out, "fathom_batch_size", label("model", model));
    header(out, "fathom_tokens_processed_total", "counter", "Input tokens run through a model (without padding)");
    for (const auto& [model, n] : tokens_) {
      out += "fathom_tokens_processed_total{" + label("model", model) + "} " + std::to_string(n) + "\n";
    }
    header(out, "fathom_audio_seconds_processed_total", "counter", "Seconds of audio processed by a speech model");
    for (const auto& [model, s] : audio_seconds_) {
      out += "fathom_audio_seconds_processed_total{" + label("model", model) + "} " + number(s) + "\n";
    }
  }
  std::string current;
  for (const auto& g : gauges) {
    if (g.name != current) {
      header(out, g.name, "gauge", g.help);
      current = g.name;
    }
    out += g.name;
    if (!g.labels.empty()) {
      out += "{";
      for (std::size_t i = 0; i < g.labels.size(); ++i) out += (i ? "," : "") + label(g.labels[i].first, g.labels[i].second);
      out += "}";
    }
    out += " " + number(g.value) + "\n";
  }
  return out;
}

}  // namespace fathom::engine
