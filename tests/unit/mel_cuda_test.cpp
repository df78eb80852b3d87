// The CUDA log-mel kernel against the CPU features (built with FATHOM_WITH_CUDA; skipped without a device).
#include <gtest/gtest.h>

#if FATHOM_WITH_CUDA
#include <cuda_runtime.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "backends/cuda/mel/log_mel.h"
#include "formats/audio/audio.h"
#include "formats/mel/log_mel.h"
#include "support/paths.h"

namespace fathom {
namespace {

bool have_device() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

template <typename T>
T* upload(const std::vector<T>& v) {
  T* d = nullptr;
  EXPECT_EQ(cudaMalloc(&d, v.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(d, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

void check(int n_mels, int64_t n_samples) {
  std::ifstream f(testing::shared_dir() / "assets/whisper/jfk.wav", std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  auto audio = formats::decode_wav(bytes);
  ASSERT_TRUE(audio.ok());
  const auto& samples = audio->samples;
  formats::LogMelOptions o;
  o.n_mels = n_mels;
  o.pad_or_trim_samples = n_samples;
  auto cpu = formats::whisper_log_mel(samples, o);
  ASSERT_TRUE(cpu.ok());
  auto filters = formats::whisper_mel_filters(n_mels);
  ASSERT_TRUE(filters.ok());

  float* d_samples = upload(samples);
  float* d_filters = upload(*filters);
  float* d_out = nullptr;
  void* d_ws = nullptr;
  ASSERT_EQ(cudaMalloc(&d_out, cpu->data.size() * sizeof(float)), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_ws, cuda::log_mel_workspace_bytes()), cudaSuccess);
  cuda::LogMelParams p;
  p.samples = d_samples;
  p.n_valid = static_cast<int64_t>(samples.size());
  p.n_samples = n_samples;
  p.filters = d_filters;
  p.n_mels = n_mels;
  p.out = d_out;
  p.workspace = d_ws;
  ASSERT_EQ(cuda::launch_log_mel(p, nullptr), 0);
  std::vector<float> gpu(cpu->data.size());
  ASSERT_EQ(cudaMemcpy(gpu.data(), d_out, gpu.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  double max_err = 0;
  for (std::size_t i = 0; i < gpu.size(); ++i) max_err = std::max(max_err, static_cast<double>(std::abs(gpu[i] - cpu->data[i])));
  std::printf("CUDA log-mel %d x %lld: max abs error vs CPU %.3g\n", n_mels, static_cast<long long>(cpu->n_frames), max_err);
  EXPECT_LT(max_err, 1e-4);
  cudaFree(d_samples);
  cudaFree(d_filters);
  cudaFree(d_out);
  cudaFree(d_ws);
}

TEST(MelCuda, MatchesCpu30sWindow) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  check(80, formats::kWhisperChunkSamples);
  check(128, formats::kWhisperChunkSamples);
}

TEST(MelCuda, MatchesCpuLongVariant) {
  if (!have_device()) GTEST_SKIP() << "no CUDA device";
  check(80, 176000);  // jfk.wav unpadded: reflect padding at both ends
}

}  // namespace
}  // namespace fathom
#endif  // FATHOM_WITH_CUDA
