#pragma once
// Reading test data files.
#include <cstdint>
#include <filesystem>
#include <vector>

namespace fathom::testing {

// The bytes of the file at `path`; a file that cannot be opened is a (non-fatal) gtest failure and gives
// no bytes.
std::vector<uint8_t> read_bytes(const std::filesystem::path& path);

}  // namespace fathom::testing
