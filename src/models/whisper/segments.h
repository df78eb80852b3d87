#pragma once
// Splitting one window's generated tokens into timestamped segments, and where the next window starts —
// transformers' WhisperGenerationMixin._retrieve_segment, in mel frames (10 ms) and seconds.
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace fathom::models::whisper {

constexpr int kWindowFrames = 3000;         // mel frames of one 30 s window
constexpr int kInputStride = 2;             // mel frames per encoder position
constexpr double kTimePrecision = 0.02;     // seconds per timestamp step
constexpr double kFrameSeconds = 0.01;      // seconds per mel frame

struct RawSegment {
  double start = 0, end = 0;     // seconds, already offset by the window start
  std::vector<int32_t> tokens;   // the segment's tokens as generated (timestamps included)
};

struct WindowSplit {
  std::vector<RawSegment> segments;
  int advance_frames = 0;        // how far the next window starts after this one, in mel frames
};

// `tokens`: one window's generated tokens (no prompt, no EOS). `window_start_frame`: the window's offset
// in the audio; `window_frames`: the audio frames it covered (<= 3000).
WindowSplit split_window(std::span<const int32_t> tokens, int timestamp_begin, int window_start_frame,
                         int window_frames);

// Whisper's compression ratio of `text`: bytes / zlib-compressed bytes (1.0 for empty text).
double compression_ratio(std::string_view text);

}  // namespace fathom::models::whisper
