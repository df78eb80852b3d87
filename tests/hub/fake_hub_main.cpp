// fathom_fake_hub: the tests' fake Hugging Face Hub (tests/support/fake_hub.h) as a program, for script tests.
//   fathom_fake_hub [--port N] REPO=DIR[@SHA] ...   serves each DIR as commit SHA (default 40 x 'a') on main,
//   prints "fake hub listening on PORT" and serves until SIGINT/SIGTERM.
#include <csignal>
#include <iostream>
#include <string>

#include <unistd.h>

#include "support/fake_hub.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) { g_stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  fathom::testing::FakeHub hub;
  int port = 0;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--port" && i + 1 < argc) {
      port = std::stoi(argv[++i]);
      continue;
    }
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "usage: fathom_fake_hub [--port N] REPO=DIR[@SHA] ...\n";
      return 2;
    }
    std::string dir = arg.substr(eq + 1), sha(40, 'a');
    if (auto at = dir.rfind('@'); at != std::string::npos) {
      sha = dir.substr(at + 1);
      dir = dir.substr(0, at);
    }
    hub.add_commit(arg.substr(0, eq), dir, sha, {"main"});
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  hub.start(port);
  std::cout << "fake hub listening on " << hub.port() << std::endl;
  while (!g_stop) usleep(20000);
  hub.stop();
  return 0;
}
