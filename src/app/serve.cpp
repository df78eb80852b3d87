// `fathom serve`: load the models, print what is served where, run the HTTP server until SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <atomic>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <thread>

#include "app/commands.h"
#include "base/log.h"
#include "engine/model_manager.h"
#include "models/registry.h"
#include "server/server.h"

namespace fathom::app {
namespace {

int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int sig) {
  unsigned char byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] auto n = write(g_signal_pipe[1], &byte, 1);
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

void print_table(const engine::ModelManager& manager) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "ARCHITECTURE", "DTYPE", "DEVICE", "MEMORY", "TASKS", "ENDPOINTS"}};
  for (const auto& m : manager.list()) {
    if (m->state.load() == engine::ModelState::kFailed) {
      // The endpoints the directory's architecture would have served, so the table says what is missing.
      std::string arch = "-", tasks = "-", absent;
      if (!m->dir.empty())
        if (auto match = models::Registry::global().match(m->dir); match.ok()) {
          std::vector<std::string> t, e;
          for (auto task : match->architecture->info.tasks) {
            t.push_back(models::task_name(task));
            for (const auto& ep : models::task_endpoints(task)) e.push_back(ep);
          }
          arch = match->architecture->info.name;
          tasks = join(t);
          absent = " (" + join(e) + " not exposed)";
        }
      rows.push_back({m->name, arch, "-", "-", "-", tasks, "none" + absent + ": failed to load (" + m->error + ")"});
      continue;
    }
    std::vector<std::string> tasks, endpoints;
    for (auto t : m->info.tasks) {
      tasks.push_back(models::task_name(t));
      for (const auto& e : models::task_endpoints(t)) endpoints.push_back(e);
    }
    rows.push_back({m->name, m->architecture, std::string(dtype_name(m->dtype)), m->device.to_string(),
                    format_bytes(m->memory_bytes), join(tasks), join(endpoints)});
  }
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  for (const auto& r : rows) {
    std::ostringstream line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line << std::left << std::setw(static_cast<int>(width[i] + (i + 1 < r.size() ? 2 : 0))) << r[i];
    }
    std::cout << line.str() << "\n";
  }
  std::cout.flush();
}

}  // namespace

std::string format_bytes(std::size_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1);
  if (bytes >= (1ull << 30)) s << static_cast<double>(bytes) / (1ull << 30) << " GiB";
  else if (bytes >= (1ull << 20)) s << static_cast<double>(bytes) / (1ull << 20) << " MiB";
  else if (bytes >= 1024) s << static_cast<double>(bytes) / 1024 << " KiB";
  else s << bytes << " B";
  return s.str();
}

int run_serve(ServeConfig config) {
  // SIGINT/SIGTERM are caught by a handler that only writes the signal number into a pipe (async-signal-safe);
  // a watcher thread reads it and stops the server. A handler, unlike sigwait, works whichever thread the
  // kernel picks, including threads that libraries (OpenBLAS) started before main.
  if (pipe(g_signal_pipe) != 0) {
    std::cerr << "fathom: cannot create the signal pipe\n";
    return 1;
  }
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::atomic<bool> stop_requested{false};
  std::atomic<bool> finished{false};
  std::atomic<server::Server*> running{nullptr};
  std::thread watcher([&] {
    unsigned char sig = 0;
    while (read(g_signal_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig == 0) return;  // woken by finish(): the server ended on its own
    FATHOM_LOG(kInfo) << "received " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                      << ": no longer accepting connections, finishing requests in flight";
    stop_requested = true;
    while (!finished) {  // stop() is a no-op until the server listens, so repeat until it ends
      if (auto* s = running.load()) s->stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  auto finish = [&](int code) {
    finished = true;
    unsigned char zero = 0;
    [[maybe_unused]] auto n = write(g_signal_pipe[1], &zero, 1);
    watcher.join();
    return code;
  };

  server::ServerConfig& cfg = config.config;
  if (cfg.models.empty()) {
    for (const auto& spec : find_demo_models(config.argv0)) {
      server::ModelConfig m;
      m.name = spec.name;
      m.path = spec.dir;
      cfg.models.push_back(std::move(m));
    }
    if (cfg.models.empty()) {
      std::cerr << "fathom: no --model given and the bundled demo models were not found.\n"
                   "Serve a model directory with: fathom serve --model NAME=/path/to/hf-model-dir\n";
      return finish(1);
    }
    std::cout << "No --model given: serving the bundled RANDOM-WEIGHT demo models ("
              << cfg.models[0].name << ", " << cfg.models[1].name
              << "). Their embeddings are meaningless; they exist to try the API and for tests.\n"
                 "Serve a real model with: fathom serve --model NAME=/path/to/hf-model-dir "
                 "(a Hugging Face directory with config.json, *.safetensors and tokenizer.json)\n";
  }

  engine::ModelManager manager;
  int failed = 0;
  for (const auto& spec : cfg.models) {
    if (stop_requested) return finish(0);
    const models::LoadOptions load = server::model_load_options(cfg, spec);
    FATHOM_LOG(kInfo) << "loading model '" << spec.name << "' from " << spec.path.string() << " on "
                      << load.device.to_string()
                      << (load.memory_budget ? " with a memory budget of " + format_bytes(load.memory_budget) : "");
    auto status = manager.load(spec.name, spec.path, load, server::model_serve_options(cfg, spec));
    // A model that cannot load does not keep the others from serving: it stays listed as failed with its
    // error (/v1/models, /ready answers 503 naming it) until it is loaded again or unloaded through the
    // admin API. With nothing loaded at all there is nothing to serve.
    if (!status.ok()) {
      std::cerr << "fathom: model '" << spec.name << "' failed to load; serving the others: "
                << status.error().message << "\n";
      ++failed;
    }
  }
  if (!cfg.models.empty() && failed == static_cast<int>(cfg.models.size())) {
    std::cerr << "fathom: no model could be loaded; exiting\n";
    manager.shutdown();
    return finish(1);
  }

  // Models loaded later through the admin API start from the same defaults.
  cfg.server.default_load = server::model_load_options(cfg, server::ModelConfig{});
  cfg.server.default_serve = server::model_serve_options(cfg, server::ModelConfig{});
  server::Server server(cfg.server, manager);
  auto port = server.bind();
  if (!port.ok()) {
    std::cerr << "fathom: " << port.error().message << "\n";
    manager.shutdown();
    return finish(1);
  }
  print_table(manager);
  if (!cfg.server.admin_token.empty()) FATHOM_LOG(kInfo) << "admin API enabled at /v1/admin/models";
  std::cout << "fathom " << FATHOM_VERSION << " listening on http://" << cfg.server.host << ":" << port.value()
            << " (routes: " << join(server.routes()) << ")" << std::endl;

  running = &server;
  if (!stop_requested) server.run();  // returns after stop() once in-flight requests are answered
  running = nullptr;
  manager.shutdown();  // finishes anything still queued, stops the device workers
  FATHOM_LOG(kInfo) << "shut down cleanly";
  return finish(0);
}

}  // namespace fathom::app
