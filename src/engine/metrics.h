#pragma once
// Process-wide operational counters, rendered in the Prometheus text exposition format (GET /metrics).
//
// The engine and the server record into Metrics::global(): requests (route, model, status) with their latency
// (by route and model), batch sizes, each model's device steps (their wall time, and how long the inputs
// they started had waited in the model's queue), tokens and audio seconds processed. Request latency minus
// queue wait minus step time is what the host adds (HTTP, tokenisation, handing results back). Gauges that
// describe the current state (queue depth, model memory, model state) are not stored here: the /metrics route
// reads them from the ModelManager at scrape time and passes them to render().
//
// Label values are escaped; callers keep label cardinality bounded (the server labels requests with a
// registered route and a loaded model's name, never with arbitrary client text).
//
// Thread-safety: every method may be called from any thread.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace fathom::engine {

// A histogram with fixed upper bounds (the +Inf bucket is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double value);
  // Appends the _bucket/_sum/_count lines of `name` with `labels` ("a=\"x\"" or empty).
  void render(std::string& out, const std::string& name, const std::string& labels) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative
  double sum_ = 0;
  uint64_t count_ = 0;
};

// One gauge sample supplied at render time.
struct GaugeSample {
  std::string name;    // e.g. "fathom_queue_depth"
  std::string help;    // one line
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Metrics {
 public:
  static Metrics& global();

  // One finished HTTP request: its route ("/v1/embeddings", "other"), model ("" when none) and status.
  void record_request(const std::string& route, const std::string& model, int status, double seconds);
  // One step a model's scheduler ran on its device worker (one lock for all of it).
  struct Step {
    std::size_t sequences = 0;  // batch size: sequences (speech: jobs decoded); 0 records no batch
    std::size_t tokens = 0;     // unpadded input tokens (0 for speech)
    double seconds = 0;         // wall time of the step
    // Seconds each input the step started had waited since it was queued (embeddings: every sequence of the
    // batch; speech: the requests that joined the running batch at this step).
    std::vector<double> queue_waits;
  };
  void record_step(const std::string& model, const Step& step);
  // Seconds of audio a speech model has processed (the speech path calls this once per finished request).
  void add_audio_seconds(const std::string& model, double seconds);

  // The exposition text: the stored counters and histograms, then `gauges` (grouped by name, in order).
  std::string render(const std::vector<GaugeSample>& gauges = {}) const;

  // Readers for tests.
  uint64_t requests(const std::string& route, const std::string& model, int status) const;
  uint64_t tokens(const std::string& model) const;
  uint64_t batches(const std::string& model) const;
  double audio_seconds(const std::string& model) const;
  uint64_t steps(const std::string& model) const;        // record_step calls
  uint64_t queue_waits(const std::string& model) const;  // queue waits observed

 private:
  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;  // (route, model, status)
  std::map<int, uint64_t> errors_;                                           // status >= 400
  std::map<std::pair<std::string, std::string>, Histogram> latency_;         // (route, model) -> seconds
  std::map<std::string, Histogram> batch_sizes_;                             // model -> sequences
  std::map<std::string, Histogram> step_seconds_;                            // model -> seconds per step
  std::map<std::string, Histogram> queue_wait_;                              // model -> seconds per input
  std::map<std::string, uint64_t> tokens_;                                   // model -> tokens
  std::map<std::string, double> audio_seconds_;                              // model -> seconds
};

// Escapes a Prometheus label value (backslash, double quote, newline).
std::string escape_label_value(const std::string& value);

}  // namespace fathom::engine
