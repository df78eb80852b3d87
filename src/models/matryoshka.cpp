#include "models/matryoshka.h"

#include <string>

#include "formats/json_file.h"

namespace fathom::models {

Result<MatryoshkaDims> parse_matryoshka(const nlohmann::json& j, const std::filesystem::path& file, int hidden) {
  MatryoshkaDims m;
  FATHOM_ASSIGN_OR_RETURN(auto flag, formats::json_bool(j, "is_matryoshka", file));
  m.is_matryoshka = flag.value_or(false);
  if (auto it = j.find("matryoshka_dimensions"); it != j.end() && !it->is_null()) {
    if (!it->is_array())
      return make_error(ErrorCode::kLoadFailed, file.string() + ": `matryoshka_dimensions` should be a list of integers");
    for (const auto& d : *it) {
      if (!d.is_number_integer() || d.get<int64_t>() <= 0 || d.get<int64_t>() > hidden)
        return make_error(ErrorCode::kLoadFailed, file.string() + ": `matryoshka_dimensions` entries must be integers in [1, " +
                                                      std::to_string(hidden) + "], got " + d.dump());
      m.dimensions.push_back(d.get<int>());
    }
  }
  return m;
}

}  // namespace fathom::models
