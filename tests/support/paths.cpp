#include "support/paths.h"

#include <cstdlib>

namespace fathom::testing {

std::filesystem::path source_dir() {
  if (const char* env = std::getenv("FATHOM_SOURCE_DIR")) return env;
  return FATHOM_SOURCE_DIR;
}

std::filesystem::path shared_dir() {
  if (const char* env = std::getenv("FATHOM_SHARED_DIR")) return env;
  return FATHOM_SHARED_DIR;
}

std::filesystem::path fixture(const std::filesystem::path& rel) { return source_dir() / "tests" / "fixtures" / rel; }

}  // namespace fathom::testing
