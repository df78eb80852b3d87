// decode_audio: FFmpeg (libavformat over an in-memory AVIOContext, libavcodec, libswresample) when built
// with FATHOM_WITH_FFMPEG, else the built-in WAV reader.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "base/log.h"
#include "formats/audio/audio.h"
#include "formats/audio/limits.h"

#if FATHOM_WITH_FFMPEG
extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
}
#endif

namespace fathom::formats {

#if !FATHOM_WITH_FFMPEG

Result<AudioBuffer> decode_audio(std::span<const uint8_t> bytes, const AudioLimits& limits) {
  FATHOM_TRY(audio_detail::check_size(bytes.size(), limits));
  if (looks_like_wav(bytes)) return decode_wav(bytes, limits);
  return make_error(ErrorCode::kUnsupported,
                    "this build decodes only WAV (RIFF/WAVE PCM) audio; it was built without FFmpeg, which the "
                    "other formats (flac, mp3, mp4, m4a, ogg, webm, ...) need",
                    "file");
}

#else  // FATHOM_WITH_FFMPEG

namespace {

using audio_detail::check_format;
using audio_detail::check_size;
using audio_detail::fmt_double;
using Clock = std::chrono::steady_clock;

constexpr int kIoBufferSize = 64 * 1024;

// FFmpeg's own log is off stderr: error-level lines go to fathom's log at debug level, and the last one
// of the calling thread is kept so that error messages can quote FFmpeg's explanation.
thread_local std::string t_last_ffmpeg_error;

void ffmpeg_log_callback(void* avcl, int level, const char* fmt, va_list vl) {
  if (level > AV_LOG_ERROR) return;
  char line[512];
  int print_prefix = 1;
  av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
  std::string s(line);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  FATHOM_LOG(kDebug) << "ffmpeg: " << s;  // errors reach the caller through the returned message
  t_last_ffmpeg_error = std::move(s);
}

void init_ffmpeg_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_ERROR);
    av_log_set_callback(ffmpeg_log_callback);
  });
}

std::string av_error_string(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof buf);
  std::string s(buf);
  if (!t_last_ffmpeg_error.empty()) s += " (" + t_last_ffmpeg_error + ")";
  return s;
}

Error invalid(const std::string& what) { return make_error(ErrorCode::kInvalidArgument, what, "file"); }

// Containers that may carry the formats OpenAI accepts (flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, webm)
// plus raw AAC and AIFF. Other demuxers (FFmpeg has hundreds) are not exposed to uploads.
bool demuxer_allowed(const char* name) {
  static const char* kAllowed[] = {"mp3", "mov", "ogg", "wav", "flac", "matroska", "mpeg", "mpegts", "aac", "aiff"};
  std::string names(name ? name : "");
  std::size_t start = 0;
  while (start <= names.size()) {
    std::size_t end = names.find(',', start);
    if (end == std::string::npos) end = names.size();
    std::string one = names.substr(start, end - start);
    for (const char* a : kAllowed)
      if (one == a) return true;
    start = end + 1;
  }
  return false;
}

// Ogg pages are contiguous; a last page running past the end of the bytes means a cut-off file (the
// demuxer silently drops it). Walks page headers only; stops without a verdict at anything else.
bool ogg_last_page_cut(std::span<const uint8_t> b) {
  std::size_t pos = 0;
  while (pos + 27 <= b.size() && std::memcmp(b.data() + pos, "OggS", 4) == 0) {
    const std::size_t nsegs = b[pos + 26];
    if (pos + 27 + nsegs > b.size()) return true;
    std::size_t len = 27 + nsegs;
    for (std::size_t i = 0; i < nsegs; ++i) len += b[pos + 27 + i];
    if (pos + len > b.size()) return true;
    pos += len;
  }
  return false;
}

struct MemoryReader {
  const uint8_t* data;
  int64_t size;
  int64_t pos = 0;
};

int read_packet(void* opaque, uint8_t* buf, int buf_size) {
  auto* r = static_cast<MemoryReader*>(opaque);
  int64_t n = std::min<int64_t>(buf_size, r->size - r->pos);
  if (n <= 0) return AVERROR_EOF;
  std::memcpy(buf, r->data + r->pos, static_cast<std::size_t>(n));
  r->pos += n;
  return static_cast<int>(n);
}

int64_t seek(void* opaque, int64_t offset, int whence) {
  auto* r = static_cast<MemoryReader*>(opaque);
  whence &= ~AVSEEK_FORCE;
  int64_t target;
  switch (whence) {
    case AVSEEK_SIZE: return r->size;
    case SEEK_SET: target = offset; break;
    case SEEK_CUR: target = r->pos + offset; break;
    case SEEK_END: target = r->size + offset; break;
    default: return AVERROR(EINVAL);
  }
  if (target < 0 || target > r->size) return AVERROR(EINVAL);
  r->pos = target;
  return target;
}

struct Deadline {
  Clock::time_point end;
  bool expired() const { return Clock::now() > end; }
};

int interrupt_cb(void* opaque) { return static_cast<Deadline*>(opaque)->expired() ? 1 : 0; }

// RAII owners of the FFmpeg objects.
struct IoDeleter {
  void operator()(AVIOContext* io) const {
    if (io) av_freep(&io->buffer);
    avio_context_free(&io);
  }
};
struct FormatDeleter {
  void operator()(AVFormatContext* f) const { avformat_close_input(&f); }
};
struct CodecDeleter {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct SwrDeleter {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct PacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct FrameDeleter {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};

// Resamples decoded frames to 16 kHz mono float (mean of the channels); rebuilt if the stream's format
// changes mid-way (concatenated mp3s do that).
class Converter {
 public:
  Status configure(const AVChannelLayout& in_layout_src, AVSampleFormat fmt, int rate) {
    AVChannelLayout in_layout{};
    if (in_layout_src.order == AV_CHANNEL_ORDER_UNSPEC || av_channel_layout_check(&in_layout_src) == 0) {
      av_channel_layout_default(&in_layout, in_layout_src.nb_channels);
    } else if (av_channel_layout_copy(&in_layout, &in_layout_src) < 0) {
      return make_error(ErrorCode::kInternal, "could not copy a channel layout");
    }
    const int channels = in_layout.nb_channels;
    FATHOM_TRY(check_format(channels, rate));
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    SwrContext* raw = nullptr;
    int ret = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, kWhisperSampleRate, &in_layout, fmt, rate, 0,
                                  nullptr);
    swr_.reset(raw);
    av_channel_layout_uninit(&in_layout);
    if (ret < 0 || !swr_) return invalid("cannot convert this audio: " + av_error_string(ret));
    std::vector<double> matrix(static_cast<std::size_t>(channels), 1.0 / channels);
    ret = swr_set_matrix(swr_.get(), matrix.data(), channels);
    if (ret >= 0) ret = swr_init(swr_.get());
    if (ret < 0) return invalid("cannot convert this audio: " + av_error_string(ret));
    fmt_ = fmt;
    rate_ = rate;
    channels_ = channels;
    av_channel_layout_uninit(&layout_);
    av_channel_layout_copy(&layout_, &in_layout_src);
    return Status::Ok();
  }
  ~Converter() { av_channel_layout_uninit(&layout_); }

  bool matches(const AVFrame& f) const {
    return swr_ && f.format == fmt_ && f.sample_rate == rate_ && av_channel_layout_compare(&f.ch_layout, &layout_) == 0;
  }

  // Converts `frame` (null: flush) and appends to `out`.
  Status convert(const AVFrame* frame, std::vector<float>& out) {
    const int in_samples = frame ? frame->nb_samples : 0;
    for (;;) {
      int capacity = swr_get_out_samples(swr_.get(), in_samples);
      if (capacity < 0) return invalid("audio conversion failed: " + av_error_string(capacity));
      capacity += 32;
      std::size_t old = out.size();
      out.resize(old + static_cast<std::size_t>(capacity));
      uint8_t* dst = reinterpret_cast<uint8_t*>(out.data() + old);
      int got = swr_convert(swr_.get(), &dst, capacity,
                            frame ? const_cast<const uint8_t**>(frame->extended_data) : nullptr, in_samples);
      if (got < 0) {
        out.resize(old);
        return invalid("audio conversion failed: " + av_error_string(got));
      }
      out.resize(old + static_cast<std::size_t>(got));
      // A frame is consumed in one call; a flush loops until the resampler is empty.
      if (frame || got == 0) return Status::Ok();
    }
  }

  bool ready() const { return swr_ != nullptr; }
  int channels() const { return channels_; }

 private:
  std::unique_ptr<SwrContext, SwrDeleter> swr_;
  AVChannelLayout layout_{};
  int fmt_ = -1, rate_ = 0, channels_ = 0;
};

}  // namespace

Result<AudioBuffer> decode_audio(std::span<const uint8_t> bytes, const AudioLimits& limits) {
  FATHOM_TRY(check_size(bytes.size(), limits));
  // FFmpeg clamps a WAV 'data' chunk to the bytes present; a cut-off WAV is refused like other formats.
  if (looks_like_wav(bytes)) FATHOM_TRY(audio_detail::parse_wav_layout(bytes));
  if (ogg_last_page_cut(bytes)) return invalid("the Ogg file is truncated: its last page is incomplete");
  init_ffmpeg_logging();
  t_last_ffmpeg_error.clear();
  Deadline deadline{Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(limits.max_decode_wall_seconds))};
  auto timed_out = [&] {
    return invalid("decoding was abandoned after " + fmt_double(limits.max_decode_wall_seconds) +
                   " s; the file is likely malformed");
  };

  MemoryReader reader{bytes.data(), static_cast<int64_t>(bytes.size())};
  auto* io_buffer = static_cast<uint8_t*>(av_malloc(kIoBufferSize));
  if (!io_buffer) return make_error(ErrorCode::kOutOfMemory, "out of memory for the audio reader");
  std::unique_ptr<AVIOContext, IoDeleter> io(
      avio_alloc_context(io_buffer, kIoBufferSize, 0, &reader, read_packet, nullptr, seek));
  if (!io) {
    av_free(io_buffer);
    return make_error(ErrorCode::kOutOfMemory, "out of memory for the audio reader");
  }

  const AVInputFormat* input_format = nullptr;
  int ret = av_probe_input_buffer2(io.get(), &input_format, nullptr, nullptr, 0, 0);
  if (ret < 0 || !input_format)
    return invalid("the file is not a recognised audio format (supported: flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, "
                   "webm)");
  if (!demuxer_allowed(input_format->name))
    return invalid(std::string("the file looks like '") + input_format->name +
                   "', which is not an accepted audio format (supported: flac, mp3, mp4, mpeg, mpga, m4a, ogg, wav, "
                   "webm)");

  AVFormatContext* fmt_raw = avformat_alloc_context();
  if (!fmt_raw) return make_error(ErrorCode::kOutOfMemory, "out of memory for the audio demuxer");
  fmt_raw->pb = io.get();
  fmt_raw->flags |= AVFMT_FLAG_CUSTOM_IO;
  fmt_raw->interrupt_callback.callback = interrupt_cb;
  fmt_raw->interrupt_callback.opaque = &deadline;
  ret = avformat_open_input(&fmt_raw, nullptr, input_format, nullptr);  // frees fmt_raw on failure
  if (ret < 0) return invalid("cannot read the audio file: " + av_error_string(ret));
  std::unique_ptr<AVFormatContext, FormatDeleter> fmt(fmt_raw);
  ret = avformat_find_stream_info(fmt.get(), nullptr);
  if (deadline.expired()) return timed_out();
  if (ret < 0) return invalid("cannot read the audio file: " + av_error_string(ret));

  const AVCodec* codec = nullptr;
  int stream_index = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (stream_index == AVERROR_STREAM_NOT_FOUND) return invalid("the file has no audio stream");
  if (stream_index < 0 || !codec) {
    // A stream exists but no decoder does.
    int any = av_find_best_stream(fmt.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
    const char* name = any >= 0 ? avcodec_get_name(fmt->streams[any]->codecpar->codec_id) : "unknown";
    return make_error(ErrorCode::kUnsupported, std::string("no decoder for the audio codec '") + name + "'", "file");
  }
  AVStream* stream = fmt->streams[stream_index];
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    if (static_cast<int>(i) != stream_index) fmt->streams[i]->discard = AVDISCARD_ALL;
  FATHOM_TRY(check_format(stream->codecpar->ch_layout.nb_channels, stream->codecpar->sample_rate));

  std::unique_ptr<AVCodecContext, CodecDeleter> dec(avcodec_alloc_context3(codec));
  if (!dec) return make_error(ErrorCode::kOutOfMemory, "out of memory for the audio decoder");
  ret = avcodec_parameters_to_context(dec.get(), stream->codecpar);
  if (ret < 0) return invalid("cannot set up the audio decoder: " + av_error_string(ret));
  dec->pkt_timebase = stream->time_base;
  dec->thread_count = 1;
  ret = avcodec_open2(dec.get(), codec, nullptr);
  if (ret < 0) return invalid(std::string("cannot open the ") + codec->name + " decoder: " + av_error_string(ret));

  AudioBuffer out;
  out.source_format = input_format->name;
  out.source_codec = codec->name;
  out.source_sample_rate = dec->sample_rate;
  out.source_channels = dec->ch_layout.nb_channels;

  std::unique_ptr<AVPacket, PacketDeleter> pkt(av_packet_alloc());
  std::unique_ptr<AVFrame, FrameDeleter> frame(av_frame_alloc());
  if (!pkt || !frame) return make_error(ErrorCode::kOutOfMemory, "out of memory for audio frames");
  Converter conv;
  const double max_samples = limits.max_duration_seconds * kWhisperSampleRate;
  int64_t decode_errors = 0;
  std::string first_decode_error;

  // Drains decoded frames into `out.samples`. Returns an error to stop decoding.
  auto drain = [&]() -> Status {
    for (;;) {
      int r = avcodec_receive_frame(dec.get(), frame.get());
      if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return Status::Ok();
      if (r < 0) {
        if (decode_errors++ == 0) first_decode_error = av_error_string(r);
        return Status::Ok();
      }
      if (!conv.matches(*frame)) {
        if (conv.ready()) FATHOM_TRY(conv.convert(nullptr, out.samples));
        FATHOM_TRY(conv.configure(frame->ch_layout, static_cast<AVSampleFormat>(frame->format), frame->sample_rate));
      }
      Status s = conv.convert(frame.get(), out.samples);
      av_frame_unref(frame.get());
      FATHOM_TRY(s);
      if (static_cast<double>(out.samples.size()) > max_samples)
        return audio_detail::too_long(static_cast<double>(out.samples.size()) / kWhisperSampleRate, limits, true);
    }
  };

  // Each iteration consumes a packet; the count bound and the deadline stop demuxers that never end.
  const int64_t max_packets = static_cast<int64_t>(bytes.size()) * 4 + 100000;
  int64_t packets = 0;
  int read_ret = 0;
  while ((read_ret = av_read_frame(fmt.get(), pkt.get())) >= 0) {
    if (++packets > max_packets || deadline.expired()) return timed_out();
    if (pkt->stream_index == stream_index) {
      if (pkt->flags & AV_PKT_FLAG_CORRUPT) {  // a partial packet: the demuxer ran out of bytes
        av_packet_unref(pkt.get());
        return invalid("the audio file is truncated or corrupt (a partial packet at " +
                       fmt_double(out.duration_seconds(), 2) + " s)");
      }
      int r = avcodec_send_packet(dec.get(), pkt.get());
      av_packet_unref(pkt.get());
      if (r < 0 && r != AVERROR(EAGAIN)) {
        if (decode_errors++ == 0) first_decode_error = av_error_string(r);
      }
      FATHOM_TRY(drain());
    } else {
      av_packet_unref(pkt.get());
    }
  }
  if (deadline.expired()) return timed_out();
  if (read_ret != AVERROR_EOF)
    return invalid("the audio file is truncated or corrupt: " + av_error_string(read_ret));
  avcodec_send_packet(dec.get(), nullptr);
  FATHOM_TRY(drain());
  if (conv.ready()) FATHOM_TRY(conv.convert(nullptr, out.samples));
  if (static_cast<double>(out.samples.size()) > max_samples)
    return audio_detail::too_long(static_cast<double>(out.samples.size()) / kWhisperSampleRate, limits, false);

  if (out.samples.empty()) {
    if (decode_errors > 0) return invalid("the audio could not be decoded: " + first_decode_error);
    return invalid("the file contains no audio samples");
  }
  // A container that states its length (FLAC STREAMINFO, an mp3 Xing/LAME header, Matroska's
  // Duration, ...): far fewer samples than stated means a cut-off file. Streams without a stated
  // length (raw mp3 frames, MPEG-PS) decode up to where they end.
  if (fmt->duration_estimation_method == AVFMT_DURATION_FROM_STREAM) {
    double declared = 0.0;
    if (stream->duration != AV_NOPTS_VALUE && stream->duration > 0)
      declared = static_cast<double>(stream->duration) * av_q2d(stream->time_base);
    if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0)
      declared = std::max(declared, static_cast<double>(fmt->duration) / AV_TIME_BASE);
    double got = out.duration_seconds();
    if (declared > 0 && got < declared * 0.98 - 0.1)
      return invalid("the audio file is truncated: it declares " + fmt_double(declared, 2) + " s but holds " +
                     fmt_double(got, 2) + " s");
  }
  audio_detail::sanitize_samples(out.samples);
  return out;
}

#endif  // FATHOM_WITH_FFMPEG

}  // namespace fathom::formats
