#include "formats/json_file.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace fathom::formats {
namespace {
Error type_error(const std::filesystem::path& file, std::string_view key, const char* want, const nlohmann::json& v) {
  return make_error(ErrorCode::kLoadFailed, file.string() + ": `" + std::string(key) + "` should be " + want + ", got " +
                                                v.dump().substr(0, 80));
}
const nlohmann::json* member(const nlohmann::json& j, std::string_view key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(std::string(key));
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}
}  // namespace

Result<nlohmann::json> read_json_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    return make_error(ErrorCode::kNotFound, path.string() + ": file not found");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::kLoadFailed, path.string() + ": cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return make_error(ErrorCode::kLoadFailed, path.string() + ": invalid JSON");
  return j;
}

Result<std::optional<int64_t>> json_int(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file) {
  const auto* v = member(j, key);
  if (!v) return std::optional<int64_t>();
  if (v->is_number_integer()) return std::optional<int64_t>(v->get<int64_t>());
  if (v->is_number_float()) {
    double d = v->get<double>();
    // Range first: converting an out-of-range double to int64_t is undefined behaviour.
    if (std::abs(d) < 9e18 && d == std::trunc(d))
      return std::optional<int64_t>(static_cast<int64_t>(d));
  }
  return type_error(file, key, "an integer", *v);
}

Result<std::optional<double>> json_number(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file) {
  const auto* v = member(j, key);
  if (!v) return std::optional<double>();
  if (v->is_number()) return std::optional<double>(v->get<double>());
  return type_error(file, key, "a number", *v);
}

Result<std::optional<std::string>> json_string(const nlohmann::json& j, std::string_view key,
                                               const std::filesystem::path& file) {
  const auto* v = member(j, key);
  if (!v) return std::optional<std::string>();
  if (v->is_string()) return std::optional<std::string>(v->get<std::string>());
  return type_error(file, key, "a string", *v);
}

Result<std::optional<bool>> json_bool(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file) {
  const auto* v = member(j, key);
  if (!v) return std::optional<bool>();
  if (v->is_boolean()) return std::optional<bool>(v->get<bool>());
  return type_error(file, key, "true or false", *v);
}

Result<int> json_positive_int(const nlohmann::json& j, std::string_view key, const std::filesystem::path& file) {
  FATHOM_ASSIGN_OR_RETURN(auto v, json_int(j, key, file));
  if (!v) return make_error(ErrorCode::kLoadFailed, file.string() + ": `" + std::string(key) + "` is missing");
  if (*v <= 0 || *v > std::numeric_limits<int>::max())
    return make_error(ErrorCode::kLoadFailed,
                      file.string() + ": `" + std::string(key) + "` must be a positive integer, got " + std::to_string(*v));
  return static_cast<int>(*v);
}

}  // namespace fathom::formats
