#pragma once
// The closed request loop of the speech benchmarks (fathom_whisper_bench, fathom_speech_bench): `concurrency`
// requests of the same audio kept in flight on a SpeechScheduler until `requests` have finished; per-request
// latency and generated token counts. A failed start or request ends the process (a benchmark of failures
// measures nothing).
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <vector>

#include "engine/speech_scheduler.h"

namespace fathom::bench {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(std::min<double>(v.size() - 1, p * (v.size() - 1) + 0.5))];
}

struct RunResult {
  double wall = 0;
  std::vector<double> latency;
  std::vector<std::size_t> tokens;
  std::size_t steps = 0;
};

inline RunResult run_closed_loop(engine::SpeechScheduler& sched, const std::vector<float>& audio,
                                 const models::SpeechOptions& o, int concurrency, int requests) {
  RunResult r;
  struct Live {
    std::shared_ptr<engine::SpeechRequest> req;
    Clock::time_point t0;
  };
  std::vector<Live> live;
  int submitted = 0;
  const auto steps0 = sched.stats().steps;
  const auto t0 = Clock::now();
  auto submit = [&] {
    auto q = sched.start(audio, o);
    if (!q.ok()) {
      std::cerr << "start failed: " << q.error().message << "\n";
      std::exit(1);
    }
    live.push_back({q.value(), Clock::now()});
    ++submitted;
  };
  while (submitted < std::min(concurrency, requests)) submit();
  while (!live.empty()) {
    sched.step();
    for (std::size_t i = 0; i < live.size();) {
      if (!live[i].req->done()) {
        ++i;
        continue;
      }
      r.latency.push_back(seconds_since(live[i].t0));
      auto res = live[i].req->result();
      if (!res.ok()) {
        std::cerr << "request failed: " << res.error().message << "\n";
        std::exit(1);
      }
      r.tokens.push_back(res->tokens.size());
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      if (submitted < requests) submit();
    }
  }
  r.wall = seconds_since(t0);
  r.steps = sched.stats().steps - steps0;
  return r;
}

}  // namespace fathom::bench
