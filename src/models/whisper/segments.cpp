#include "models/whisper/segments.h"

#include <zlib.h>

#include <vector>

namespace fathom::models::whisper {

WindowSplit split_window(std::span<const int32_t> tokens, int timestamp_begin, int window_start_frame,
                         int window_frames) {
  WindowSplit out;
  const double offset = window_start_frame * kFrameSeconds;
  const std::size_t n = tokens.size();
  auto is_ts = [&](std::size_t i) { return tokens[i] >= timestamp_begin; };
  const bool single_ending = n >= 2 && !is_ts(n - 2) && is_ts(n - 1);
  std::vector<std::size_t> slices;  // positions after each consecutive timestamp pair
  for (std::size_t i = 0; i + 1 < n; ++i)
    if (is_ts(i) && is_ts(i + 1)) slices.push_back(i + 1);

  if (!slices.empty()) {
    if (single_ending)
      slices.push_back(n);
    else
      slices.back() += 1;  // the last segment keeps its closing timestamp
    std::size_t last = 0;
    for (std::size_t k = 0; k < slices.size(); ++k) {
      const bool is_last = k + 1 == slices.size();
      std::span<const int32_t> seg = tokens.subspan(last, slices[k] - last);
      RawSegment s;
      s.tokens.assign(seg.begin(), seg.end());
      const int32_t start_tok = seg.front();
      const int32_t end_tok = (!is_last || single_ending) ? seg.back() : seg[seg.size() - 2];
      s.start = offset + (start_tok - timestamp_begin) * kTimePrecision;
      s.end = offset + (end_tok - timestamp_begin) * kTimePrecision;
      out.segments.push_back(std::move(s));
      last = slices[k];
    }
    if (single_ending) {
      out.advance_frames = window_frames;  // no speech after the last timestamp
    } else {
      // Resume at the last timestamp; what followed it was cut in the middle.
      out.advance_frames = (tokens[last - 2] - timestamp_begin) * kInputStride;
      if (out.advance_frames <= 0) out.advance_frames = window_frames;  // never stall on <|0.00|><|0.00|>
    }
  } else {
    // One segment for the whole window; it ends at its last timestamp if it has one.
    double end_pos = static_cast<int>(window_frames * kFrameSeconds / kTimePrecision);
    int32_t last_ts = -1;
    for (auto t : tokens)
      if (t >= timestamp_begin) last_ts = t;
    if (last_ts >= 0 && last_ts != timestamp_begin) end_pos = last_ts - timestamp_begin;
    RawSegment s;
    s.tokens.assign(tokens.begin(), tokens.end());
    s.start = offset;
    s.end = offset + end_pos * kTimePrecision;
    out.segments.push_back(std::move(s));
    out.advance_frames = window_frames;
  }
  return out;
}

double compression_ratio(std::string_view text) {
  if (text.empty()) return 1.0;
  uLongf bound = compressBound(static_cast<uLong>(text.size()));
  std::vector<Bytef> buf(bound);
  if (compress2(buf.data(), &bound, reinterpret_cast<const Bytef*>(text.data()), static_cast<uLong>(text.size()),
                Z_DEFAULT_COMPRESSION) != Z_OK || bound == 0)
    return 1.0;
  return static_cast<double>(text.size()) / static_cast<double>(bound);
}

}  // namespace fathom::models::whisper
