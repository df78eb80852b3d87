// Models on an SM partition (LoadOptions::max_sms): refused off CUDA with an error naming the option; on a
// GPU, BERT (GEMMs, attention, CUDA graphs) and Whisper (decode-step graphs, device log-mel) on a
// 16-SM partition give the committed references, and an impossible partition is refused at load.
// The CUDA tests skip themselves without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model_manager.h"
#include "served_answers.h"
#include "support/files.h"
#include "support/paths.h"
#include "support/vectors.h"
#include "support/whisper_inputs.h"
#if FATHOM_WITH_CUDA
#include "backends/cuda/device.h"
#include "backends/cuda/sm_partition.h"
#include "support/sm_probe.h"
#endif

namespace fathom::engine {
namespace {

bool have_gpu() {
#if FATHOM_WITH_CUDA
  return cuda::device_count() > 0;
#else
  return false;
#endif
}

models::LoadOptions on(Device device, int max_sms) {
  models::LoadOptions o;
  o.device = device;
  o.dtype = DType::kF32;
  o.max_sms = max_sms;
  return o;
}

TEST(SmPartition, RefusedOffCudaNamingTheOption) {
  ModelManager manager;
  auto st = manager.load("bert", fathom::testing::fixture("models/bert-mean-norm"), on(Device::cpu(), 16), {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(st.error().message.find("max_sms"), std::string::npos) << st.error().message;
  EXPECT_NE(st.error().message.find("CUDA devices only"), std::string::npos) << st.error().message;
  auto entry = manager.find("bert");
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->state.load(), ModelState::kFailed);
}

#if FATHOM_WITH_CUDA
// Kernels that size their grids to the device (cached attention's split count) read the partition's SMs.
TEST(SmPartition, StreamSmCountIsThePartitionsWhileItLives) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int all = cuda::device_sm_count(0);
  {
    cuda::Stream plain(0, 0, 0);
    EXPECT_EQ(cuda::partition_sm_count(plain.get()), 0);
    EXPECT_EQ(cuda::stream_sm_count(plain.get(), 0), all);
  }
  cudaStream_t gone = nullptr;
  {
    cuda::Stream part(0, 0, 16);
    gone = part.get();
    EXPECT_EQ(part.sm_limit(), cuda::partition_sm_count(part.get()));
    EXPECT_GE(cuda::stream_sm_count(part.get(), 0), 16);
    EXPECT_LT(cuda::stream_sm_count(part.get(), 0), all);
  }
  EXPECT_EQ(cuda::partition_sm_count(gone), 0);  // forgotten with the partition
}

// Two partitions of one device run on disjoint SMs, each on no more SMs than it was given, while a stream
// without a partition reaches SMs outside both.
TEST(SmPartition, TwoPartitionsNeverShareAnSm) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const int all = cuda::device_sm_count(0);
  cuda::Stream light(0, 0, 16), heavy(0, 0, 16), plain(0, 0, 0);
  const auto a = fathom::testing::sms_reached(light.get(), 8 * all);
  const auto b = fathom::testing::sms_reached(heavy.get(), 8 * all);
  const auto p = fathom::testing::sms_reached(plain.get(), 8 * all);
  EXPECT_FALSE(a.empty());
  EXPECT_FALSE(b.empty());
  EXPECT_LE(static_cast<int>(a.size()), light.sm_limit());
  EXPECT_LE(static_cast<int>(b.size()), heavy.sm_limit());
  std::vector<int> shared;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(shared));
  EXPECT_TRUE(shared.empty()) << shared.size() << " SMs run kernels of both partitions";
  EXPECT_GT(p.size(), a.size() + b.size());
}

// Partitions take whole groups until none is free: the next one is refused naming what is free and held,
// and a released partition's SMs serve the next request.
TEST(SmPartition, ExhaustedDeviceRefusesTheNextPartitionUntilOneIsReleased) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  std::vector<std::unique_ptr<cuda::Stream>> held;
  std::string refusal;
  while (refusal.empty() && held.size() < 1024) {
    try {
      held.push_back(std::make_unique<cuda::Stream>(0, 0, 1));
    } catch (const Exception& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      refusal = e.what();
    }
  }
  ASSERT_GE(held.size(), 2u);
  ASSERT_FALSE(refusal.empty());
  std::cout << "[   info   ] " << held.size() << " partitions; then: " << refusal << "\n";
  EXPECT_NE(refusal.find("does not fit: 0 of the"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("other models' partitions hold"), std::string::npos) << refusal;
  int sms = 0;
  for (const auto& s : held) sms += s->sm_limit();
  EXPECT_LE(sms, cuda::device_sm_count(0));
  held.pop_back();
  EXPECT_NO_THROW(held.push_back(std::make_unique<cuda::Stream>(0, 0, 1)));
}
#endif

TEST(SmPartition, ImpossiblePartitionIsRefusedAtLoad) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  ModelManager manager;
  auto st = manager.load("bert", fathom::testing::fixture("models/bert-mean-norm"), on(Device::cuda(0), 1 << 16), {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, ErrorCode::kInvalidArgument) << st.error().message;
  EXPECT_NE(st.error().message.find("SM limit"), std::string::npos) << st.error().message;
}

TEST(SmPartition, BertOnAPartitionMatchesTheReference) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  ModelManager manager;
  ServeOptions serve;
  serve.concurrent = true;
  auto st = manager.load("bert", fathom::testing::fixture("models/bert-mean-norm"), on(Device::cuda(0), 16), serve);
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto m = manager.find("bert");
  const auto cases = fathom::testing::reference_cases("bert-mean-norm");
  ASSERT_FALSE(cases.empty());
  for (int round = 0; round < 3; ++round) {  // first round captures the bucket's graph, the others replay it
    std::string error;
    const auto got = fathom::testing::embed_all(*m, cases, &error);
    ASSERT_EQ(got.size(), cases.size()) << error;
    for (std::size_t i = 0; i < cases.size(); ++i)
      EXPECT_GE(fathom::testing::cosine(got[i], cases[i].embedding), 0.99999) << "case " << i << " round " << round;
  }
  EXPECT_TRUE(manager.faults().empty());
  EXPECT_TRUE(manager.unload("bert").ok());
}

TEST(SmPartition, WhisperOnAPartitionMatchesTheReferenceTokens) {
  if (!have_gpu()) GTEST_SKIP() << "no CUDA device";
  const auto ref = fathom::testing::read_json(fathom::testing::fixture("models/whisper-tiny-random-f32.reference.json"));
  const auto jfk = fathom::testing::jfk_input(ref.at("n_mels").get<int>());
  ASSERT_FALSE(jfk.samples.empty());
  ModelManager manager;
  auto st = manager.load("whisper", fathom::testing::fixture("models/whisper-tiny-random-f32"), on(Device::cuda(0), 16),
                         {});
  ASSERT_TRUE(st.ok()) << st.error().message;
  auto m = manager.find("whisper");
  const auto& c = ref.at("generate").at("transcribe_en");
  std::string error;
  const auto tokens = fathom::testing::transcribe(
      *m, jfk.samples, fathom::testing::speech_options_of(c.at("kwargs"), ref.at("max_new_tokens").get<int>()), &error);
  ASSERT_TRUE(error.empty()) << error;
  EXPECT_EQ(tokens, c.at("tokens").get<std::vector<int32_t>>());
  EXPECT_TRUE(manager.unload("whisper").ok());
}

}  // namespace
}  // namespace fathom::engine
