#include "support/temp_dir.h"

#include <atomic>
#include <fstream>
#include <system_error>

#include <unistd.h>

namespace fathom::testing {

TempDir::TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          (tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& text) const { std::ofstream(path_ / name) << text; }

}  // namespace fathom::testing
