#pragma once
// Reading test data files.
#include <cstdint>
#include <filesystem>
#include <vector>

#include <nlohmann/json.hpp>

namespace fathom::testing {

// The bytes of the file at `path`; a file that cannot be opened is a (non-fatal) gtest failure and gives
// no bytes.
std::vector<uint8_t> read_bytes(const std::filesystem::path& path);
// The JSON document in the file at `path` (a reference or a config.json); throws on a parse error.
nlohmann::json read_json(const std::filesystem::path& path);

}  // namespace fathom::testing
