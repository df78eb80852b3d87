#pragma once
// Global CMVN as FunASR ships it: `am.mvn`, a Kaldi nnet1 text file whose <AddShift> row holds -mean and whose
// <Rescale> row holds 1 / stddev of the (LFR-stacked) features; normalised x = (x + shift) * scale.
#include <filesystem>
#include <string>
#include <vector>

#include "base/error.h"

namespace fathom::formats {

struct Cmvn {
  std::vector<float> shift;  // added first (AddShift)
  std::vector<float> scale;  // then multiplied (Rescale); same length as shift
};

// Parses the text of an am.mvn file. kLoadFailed naming `file` when a component is missing, its values do not
// parse, or the two rows differ in length.
Result<Cmvn> parse_kaldi_cmvn(const std::string& text, const std::string& file);
// Reads and parses `path` (kNotFound when it does not exist).
Result<Cmvn> read_kaldi_cmvn(const std::filesystem::path& path);

// feats [rows, cmvn.shift.size()] row-major, in place.
void apply_cmvn(const Cmvn& cmvn, std::vector<float>& feats);

}  // namespace fathom::formats
