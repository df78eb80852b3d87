// fathom_load: an HTTP load client for fathom's /v1/embeddings and /v1/audio/transcriptions.
//
//   fathom_load --url http://127.0.0.1:8000 --connections 64 (--duration 30 | --requests N | --per-connection N)
//               --workload mixed.json [--out results.json] [--check] [--allow 200,429]
//
// Runs one thread per connection (a keep-alive httplib::Client each); every thread picks the next request's
// workload entry at random by weight, sends it, and records its status and latency. Stops after --duration
// seconds, after --requests requests in all, or when each connection has sent --per-connection requests.
// With --check every 200 answer is compared with the entry's `expected` (bench/load/workload.h). Prints per-entry and total figures (requests, status counts, req/s,
// inputs/s, latency p50/p90/p99/max of the 200 answers in ms, check failures) and writes them as JSON to
// --out. Exit status: 0 when every answer's status is in the allowed set (default 200,429) and no check
// failed; 1 otherwise; 2 on bad arguments or workload.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "workload.h"

namespace {

using fathom::load::Entry;
using fathom::load::Kind;
using fathom::load::Workload;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Stats {
  std::vector<double> latency_ms;         // of 200 answers
  std::map<std::string, uint64_t> status;  // "200", "429", "error:Connection", ...
  uint64_t requests = 0;
  uint64_t inputs_ok = 0;                 // inputs of 200 answers
  uint64_t check_failures = 0;
  std::vector<std::string> failures;      // the first few, for the report

  void merge(const Stats& o) {
    latency_ms.insert(latency_ms.end(), o.latency_ms.begin(), o.latency_ms.end());
    for (const auto& [k, v] : o.status) status[k] += v;
    requests += o.requests;
    inputs_ok += o.inputs_ok;
    check_failures += o.check_failures;
    for (const auto& f : o.failures)
      if (failures.size() < 5) failures.push_back(f);
  }
};

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0.0;
  const std::size_t k = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[k];
}

json summarize(Stats s, double wall_s) {
  json j;
  j["requests"] = s.requests;
  j["status"] = s.status;
  j["throughput_rps"] = wall_s > 0 ? s.status["200"] / wall_s : 0.0;
  j["inputs_per_s"] = wall_s > 0 ? s.inputs_ok / wall_s : 0.0;
  double max = s.latency_ms.empty() ? 0.0 : *std::max_element(s.latency_ms.begin(), s.latency_ms.end());
  j["latency_ms"] = {{"p50", percentile(s.latency_ms, 0.50)},
                     {"p90", percentile(s.latency_ms, 0.90)},
                     {"p99", percentile(s.latency_ms, 0.99)},
                     {"max", max}};
  j["check_failures"] = s.check_failures;
  if (!s.failures.empty()) j["first_failures"] = s.failures;
  return j;
}

std::string status_text(const json& status) {
  std::string out;
  for (const auto& [k, v] : status.items()) out += (out.empty() ? "" : " ") + k + ":" + std::to_string(v.get<uint64_t>());
  return out;
}

struct Options {
  std::string url;
  int connections = 1;
  double duration_s = 0;
  uint64_t requests = 0;
  uint64_t per_connection = 0;
  std::string workload;
  std::string out;
  bool check = false;
  std::string allow = "200,429";
  int timeout_s = 120;
  uint64_t seed = 1;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"fathom_load: HTTP load client for fathom (embeddings and transcriptions)"};
  app.add_option("--url", o.url, "Server base URL, e.g. http://127.0.0.1:8000")->required();
  app.add_option("--connections,-c", o.connections, "Concurrent connections (one thread each)")
      ->check(CLI::Range(1, 100000));
  auto* dur = app.add_option("--duration,-d", o.duration_s, "Seconds to run")->check(CLI::PositiveNumber);
  auto* req = app.add_option("--requests,-n", o.requests, "Requests to send in all")->check(CLI::PositiveNumber);
  auto* per = app.add_option("--per-connection", o.per_connection, "Requests each connection sends")
                 ->check(CLI::PositiveNumber);
  dur->excludes(req);
  dur->excludes(per);
  req->excludes(per);
  app.add_option("--workload,-w", o.workload, "Workload JSON file (see bench/load/README.md)")->required();
  app.add_option("--out,-o", o.out, "Write the results as JSON to this file");
  app.add_flag("--check", o.check, "Compare every 200 answer with the entry's `expected`");
  app.add_option("--allow", o.allow, "Statuses that do not fail the run (comma-separated; default 200,429)");
  app.add_option("--timeout", o.timeout_s, "Per-request read/write timeout in seconds (default 120)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", o.seed, "Seed of the per-connection entry choice");
  CLI11_PARSE(app, argc, argv);
  if (o.duration_s <= 0 && o.requests == 0 && o.per_connection == 0) {
    std::cerr << "fathom_load: give --duration SECONDS, --requests N or --per-connection N\n";
    return 2;
  }
  std::set<std::string> allowed;
  {
    std::stringstream ss(o.allow);
    for (std::string s; std::getline(ss, s, ',');)
      if (!s.empty()) allowed.insert(s);
  }
  std::string error;
  auto loaded = fathom::load::load_workload(o.workload, error);
  if (!loaded) {
    std::cerr << "fathom_load: " << error << "\n";
    return 2;
  }
  const Workload& w = *loaded;
  if (o.check) {
    for (const auto& e : w.entries)
      if (!e.checked()) std::cerr << "fathom_load: note: entry '" << e.name << "' has no `expected`; not checked\n";
  }
  {
    httplib::Client probe(o.url);
    if (!probe.is_valid()) {
      std::cerr << "fathom_load: invalid --url " << o.url << "\n";
      return 2;
    }
  }

  std::atomic<uint64_t> issued{0};
  std::vector<std::vector<Stats>> per_thread(o.connections, std::vector<Stats>(w.entries.size()));
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
  auto worker = [&](int t) {
    httplib::Client cli(o.url);
    cli.set_keep_alive(true);
    cli.set_tcp_nodelay(true);  // httplib sends headers and body apart: Nagle would hold the body ~40 ms
    cli.set_connection_timeout(o.timeout_s, 0);
    cli.set_read_timeout(o.timeout_s, 0);
    cli.set_write_timeout(o.timeout_s, 0);
    std::mt19937_64 rng(o.seed * 1000003u + t);
    std::uniform_real_distribution<double> pick(0.0, w.total_weight);
    auto& stats = per_thread[t];
    for (uint64_t sent = 0;; ++sent) {
      if (o.per_connection > 0) {
        if (sent >= o.per_connection) break;
      } else if (o.requests > 0) {
        if (issued.fetch_add(1) >= o.requests) break;
      } else if (Clock::now() >= end) {
        break;
      }
      double r = pick(rng);
      std::size_t i = 0;
      while (i + 1 < w.entries.size() && r >= w.entries[i].weight) r -= w.entries[i++].weight;
      const Entry& e = w.entries[i];
      Stats& s = stats[i];
      const auto t0 = Clock::now();
      httplib::Result res = e.kind == Kind::kEmbeddings
                                ? cli.Post("/v1/embeddings", e.body, "application/json")
                                : [&] {
                                    httplib::MultipartFormDataItems items;
                                    items.push_back({"file", e.file_bytes, e.file_name, "application/octet-stream"});
                                    items.push_back({"model", e.model, "", ""});
                                    for (const auto& [k, v] : e.fields) items.push_back({k, v, "", ""});
                                    return cli.Post("/v1/audio/transcriptions", items);
                                  }();
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      s.requests++;
      if (!res) {
        s.status["error:" + httplib::to_string(res.error())]++;
        continue;
      }
      s.status[std::to_string(res->status)]++;
      if (res->status != 200) {
        if (!allowed.count(std::to_string(res->status)) && s.failures.size() < 5)
          s.failures.push_back(std::to_string(res->status) + ": " + res->body.substr(0, 200));
        continue;
      }
      s.latency_ms.push_back(ms);
      s.inputs_ok += e.inputs;
      if (o.check) {
        std::string why = fathom::load::check_response(e, res->body);
        if (!why.empty()) {
          s.check_failures++;
          if (s.failures.size() < 5) s.failures.push_back("check: " + why);
        }
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(o.connections);
  for (int t = 0; t < o.connections; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - start).count();

  json result;
  result["url"] = o.url;
  result["connections"] = o.connections;
  result["wall_s"] = wall_s;
  result["workload"] = o.workload;
  result["checked"] = o.check;
  Stats total;
  json entries = json::array();
  for (std::size_t i = 0; i < w.entries.size(); ++i) {
    Stats s;
    for (const auto& th : per_thread) s.merge(th[i]);
    total.merge(s);
    json j = summarize(s, wall_s);
    j["name"] = w.entries[i].name;
    j["model"] = w.entries[i].model;
    j["kind"] = w.entries[i].kind == Kind::kEmbeddings ? "embeddings" : "transcriptions";
    entries.push_back(j);
  }
  result["entries"] = entries;
  result["total"] = summarize(total, wall_s);
  bool ok = total.check_failures == 0;
  for (const auto& [k, v] : total.status)
    if (!allowed.count(k)) ok = false;
  result["ok"] = ok;

  std::printf("fathom_load: %d connections, %.1f s, %s\n", o.connections, wall_s, o.url.c_str());
  std::printf("%-24s %9s %9s %10s %9s %9s %9s %9s %6s  %s\n", "entry", "requests", "req/s", "inputs/s", "p50 ms",
              "p90 ms", "p99 ms", "max ms", "check", "status");
  auto row = [](const std::string& name, const json& j) {
    std::printf("%-24s %9llu %9.1f %10.1f %9.1f %9.1f %9.1f %9.1f %6llu  %s\n", name.c_str(),
                static_cast<unsigned long long>(j["requests"].get<uint64_t>()), j["throughput_rps"].get<double>(),
                j["inputs_per_s"].get<double>(), j["latency_ms"]["p50"].get<double>(),
                j["latency_ms"]["p90"].get<double>(), j["latency_ms"]["p99"].get<double>(),
                j["latency_ms"]["max"].get<double>(), static_cast<unsigned long long>(j["check_failures"].get<uint64_t>()),
                status_text(j["status"]).c_str());
  };
  for (const auto& e : entries) row(e["name"].get<std::string>(), e);
  row("total", result["total"]);
  for (const auto& e : entries)
    if (e.contains("first_failures"))
      for (const auto& f : e["first_failures"]) std::printf("  %s: %s\n", e["name"].get<std::string>().c_str(), f.get<std::string>().c_str());
  if (!o.out.empty()) {
    std::ofstream f(o.out);
    f << result.dump(2) << "\n";
    if (!f) {
      std::cerr << "fathom_load: cannot write " << o.out << "\n";
      return 2;
    }
  }
  std::printf("fathom_load: %s\n", ok ? "OK" : "FAILED (status outside the allowed set or check failures)");
  return ok ? 0 : 1;
}
