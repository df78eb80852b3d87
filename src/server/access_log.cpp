#include "server/access_log.h"

#include <chrono>
#include <cmath>
#include <optional>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "base/log.h"

namespace fathom::server {
namespace {

using Clock = std::chrono::steady_clock;
thread_local std::optional<Clock::time_point> t_start;
thread_local std::string t_model;

}  // namespace

void access_begin() {
  t_start = Clock::now();
  t_model.clear();
}

void access_note_model(const std::string& model) { t_model = model; }

const std::string& access_model() { return t_model; }

double access_elapsed_s() {
  return t_start ? std::chrono::duration<double>(Clock::now() - *t_start).count() : 0.0;
}

void access_end(const httplib::Request& req, const httplib::Response& res) {
  double latency_ms = 0.0;
  if (t_start) latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - *t_start).count();
  nlohmann::json line;
  line["method"] = req.method;
  line["path"] = req.path;
  line["status"] = res.status;
  line["latency_ms"] = std::round(latency_ms * 100.0) / 100.0;
  line["model"] = t_model.empty() ? nlohmann::json(nullptr) : nlohmann::json(t_model);
  line["bytes_in"] = req.body.size();
  line["bytes_out"] = res.body.size();
  line["remote"] = req.remote_addr;
  FATHOM_LOG(kInfo) << "access " << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  t_start.reset();
  t_model.clear();
}

}  // namespace fathom::server
