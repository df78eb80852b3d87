#pragma once
// Reading JSON configuration files (config.json, modules.json, ...) with errors that name the file.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/error.h"

namespace fathom::formats {

// Parses `path`. Missing file: kNotFound; unreadable or invalid JSON: kLoadFailed; both name the file.
Result<nlohmann::json> read_json_file(const std::filesystem::path& path);

// Typed access to an object member. A missing key gives nullopt / the default; a present key of the
// wrong type (or an integer out of int range) is a kLoadFailed error naming the file and key.
Result<std::optional<int64_t>> json_int(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file);
Result<std::optional<double>> json_number(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file);
Result<std::optional<std::string>> json_string(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file);
Result<std::optional<bool>> json_bool(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file);
// A required positive int (e.g. hidden_size): error naming file and key when missing, mistyped or <= 0.
Result<int> json_positive_int(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file);

}  // namespace fathom::formats
