#include "formats/fbank/kaldi_cmvn.h"

#include <fstream>
#include <sstream>

namespace fathom::formats {
namespace {

// The values between the '[' and ']' that follow `component` in `text`.
Result<std::vector<float>> component_row(const std::string& text, const std::string& component, const std::string& file) {
  const auto bad = [&](const std::string& what) {
    return make_error(ErrorCode::kLoadFailed, file + ": " + component + " " + what);
  };
  const auto at = text.find(component);
  if (at == std::string::npos) return bad("is missing (expected a Kaldi nnet text with <AddShift> and <Rescale>)");
  const auto open = text.find('[', at);
  const auto close = open == std::string::npos ? std::string::npos : text.find(']', open);
  if (close == std::string::npos) return bad("has no [ ... ] row of values");
  std::istringstream in(text.substr(open + 1, close - open - 1));
  std::vector<float> row;
  std::string token;
  while (in >> token) {
    try {
      std::size_t used = 0;
      row.push_back(std::stof(token, &used));
      if (used != token.size()) return bad("has a value that is not a number: '" + token + "'");
    } catch (const std::exception&) {
      return bad("has a value that is not a number: '" + token + "'");
    }
  }
  if (row.empty()) return bad("has an empty row of values");
  return row;
}

}  // namespace

Result<Cmvn> parse_kaldi_cmvn(const std::string& text, const std::string& file) {
  Cmvn c;
  FATHOM_ASSIGN_OR_RETURN(c.shift, component_row(text, "<AddShift>", file));
  FATHOM_ASSIGN_OR_RETURN(c.scale, component_row(text, "<Rescale>", file));
  if (c.shift.size() != c.scale.size())
    return make_error(ErrorCode::kLoadFailed, file + ": <AddShift> has " + std::to_string(c.shift.size()) +
                                                  " values but <Rescale> has " + std::to_string(c.scale.size()));
  return c;
}

Result<Cmvn> read_kaldi_cmvn(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(ErrorCode::kNotFound, path.string() + ": no such CMVN file");
  std::ostringstream text;
  text << f.rdbuf();
  return parse_kaldi_cmvn(text.str(), path.string());
}

void apply_cmvn(const Cmvn& cmvn, std::vector<float>& feats) {
  const std::size_t dim = cmvn.shift.size();
  for (std::size_t i = 0; i < feats.size(); ++i) {
    const std::size_t c = i % dim;
    feats[i] = (feats[i] + cmvn.shift[c]) * cmvn.scale[c];
  }
}

}  // namespace fathom::formats
