#pragma once
// Where tests find their data. Each can be overridden by an environment variable of the same name.
#include <filesystem>

namespace fathom::testing {

// The project root (holds tests/fixtures).
std::filesystem::path source_dir();
// The shared assets folder's parent (`../shared` beside the checkout).
std::filesystem::path shared_dir();
// tests/fixtures/<rel>
std::filesystem::path fixture(const std::filesystem::path& rel);

}  // namespace fathom::testing
