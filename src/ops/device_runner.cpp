#include "ops/device_runner.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/log.h"

#if FATHOM_WITH_CUDA
#include <cuda_runtime_api.h>

#include "backends/cuda/allocator.h"
#include "backends/cuda/blas.h"
#include "backends/cuda/check.h"
#include "backends/cuda/context.h"
#include "backends/cuda/device.h"
#include "backends/cuda/graph.h"
#include "backends/cuda/varlen.h"
#endif

namespace fathom::ops {
namespace {

class CpuRunner final : public DeviceRunner {
 public:
  void* stream() const override { return nullptr; }
  bool concurrent() const override { return true; }
  Result<void*> staging(int slot, std::size_t bytes) override {
    auto& b = buffers_[slot & 1];
    if (b.size() < bytes) b.resize(bytes);
    return static_cast<void*>(b.data());
  }
  Status upload(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  Status download(void* dst, const void* src, std::size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
    return Status::Ok();
  }
  Status synchronize() override { return Status::Ok(); }
  bool graphs_supported() const override { return false; }
  Status run_graph(int, const std::function<Status()>&) override {
    return make_error(ErrorCode::kUnsupported, "graphs are not supported on cpu");
  }
  bool has_graph(int) const override { return false; }
  std::size_t graph_count() const override { return 0; }
  void clear_graphs() override {}

 private:
  std::vector<unsigned char> buffers_[2];
};

#if FATHOM_WITH_CUDA
class CudaRunner final : public DeviceRunner {
 public:
  // Creates the device's cuBLASLt handle and workspace now: nothing may allocate during capture.
  // Every runner registers a GEMM workspace of its own: a concurrent model's stream overlaps the other
  // models' streams, and even on the shared worker a model loading through the admin API runs its warm-up
  // and capture passes on the loading thread while the worker runs other models' GEMMs.
  CudaRunner(int device, const RunnerOptions& options)
      : concurrent_(options.concurrent), device_(device), stream_(device, options.stream_priority, options.max_sms) {
    cuda::BlasLt& blas = cuda::device_blas(device);
    blas.add_stream(stream_.get());
    if (stream_.sm_limit() > 0) {
      FATHOM_LOG(kInfo) << "cuda:" << device << ": a model stream on an SM partition of " << stream_.sm_limit()
                        << " of " << cuda::device_sm_count(device) << " SMs";
    }
    const char* env = std::getenv("FATHOM_PROFILE_OPS");
    profiling_ = env && *env && std::string(env) != "0";
  }
  ~CudaRunner() override {
    cudaStreamSynchronize(stream_.get());
    cuda::device_blas(device_).remove_stream(stream_.get());
    for (auto& [label, ev] : pending_) cudaEventDestroy(ev);
    for (cudaEvent_t ev : free_events_) cudaEventDestroy(ev);
  }
  void* stream() const override { return stream_.get(); }
  bool concurrent() const override { return concurrent_; }
  Result<void*> staging(int slot, std::size_t bytes) override {
    cuda::PinnedBuffer& b = pinned_[slot & 1];
    Status s = status_from_exceptions([&] {
      if (b.capacity() < bytes) b.ensure(bytes);
    });
    if (!s.ok()) return s.error();
    return b.get();
  }
  Status upload(void* dst, const void* src, std::size_t bytes) override {
    return status_from_exceptions([&] {
      if (bytes) FATHOM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_.get()));
    });
  }
  Status download(void* dst, const void* src, std::size_t bytes) override {
    return status_from_exceptions([&] {
      if (bytes) FATHOM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_.get()));
    });
  }
  Status synchronize() override {
    return status_from_exceptions([&] {
      stream_.synchronize();
      if (profiling_) collect();
    });
  }
  bool graphs_supported() const override { return true; }
  Status run_graph(int key, const std::function<Status()>& body) override {
    in_graph_ = true;  // marks inside graph bodies (and their set-up pass) are not timed
    struct Reset {
      bool& flag;
      ~Reset() { flag = false; }
    } reset{in_graph_};
    if (!graphs_.has(key)) {
      // One eager pass first: lazy per-shape setup (GEMM plans, kernel attributes) happens outside capture;
      // the GEMM shapes the graph will replay are autotuned here.
      cuda::GemmAutotuneScope tune;
      FATHOM_TRY(body());
    }
    return status_from_exceptions([&] {
      cuda::set_device(device_);
      graphs_.run(key, stream_.get(), [&](cudaStream_t) {
        Status s = body();
        if (!s.ok()) throw Exception(s.error().code, s.error().message);
      });
    });
  }
  bool has_graph(int key) const override { return graphs_.has(key); }
  std::size_t graph_count() const override { return graphs_.size(); }
  void clear_graphs() override { graphs_.clear(); }

  bool profiling() const override { return profiling_; }
  void mark(const char* label) override {
    if (!profiling_ || in_graph_) return;
    cudaEvent_t ev = nullptr;
    if (!free_events_.empty()) {
      ev = free_events_.back();
      free_events_.pop_back();
    } else if (cudaEventCreate(&ev) != cudaSuccess) {
      return;
    }
    if (cudaEventRecord(ev, stream_.get()) != cudaSuccess) {
      free_events_.push_back(ev);
      return;
    }
    pending_.emplace_back(label, ev);
  }
  std::vector<StageTime> profile() override {
    (void)synchronize();
    return totals_;
  }

 private:
  // Turns the recorded marks (the stream is idle) into per-label totals.
  void collect() {
    for (std::size_t i = 1; i < pending_.size(); ++i) {
      const char* label = pending_[i].first;
      if (!label) continue;
      float ms = 0.f;
      if (cudaEventElapsedTime(&ms, pending_[i - 1].second, pending_[i].second) != cudaSuccess) continue;
      auto it = std::find_if(totals_.begin(), totals_.end(),
                             [&](const StageTime& t) { return std::strcmp(t.label, label) == 0; });
      if (it == totals_.end()) {
        totals_.push_back({label, ms, 1});
      } else {
        it->ms += ms;
        ++it->count;
      }
    }
    for (auto& [label, ev] : pending_) free_events_.push_back(ev);
    pending_.clear();
  }

  bool concurrent_ = false;
  bool profiling_ = false;
  bool in_graph_ = false;
  std::vector<std::pair<const char*, cudaEvent_t>> pending_;
  std::vector<cudaEvent_t> free_events_;
  std::vector<StageTime> totals_;
  int device_;
  cuda::Stream stream_;
  cuda::PinnedBuffer pinned_[2];
  cuda::GraphCache graphs_;
};
#endif

}  // namespace

Result<std::unique_ptr<DeviceRunner>> DeviceRunner::create(const Device& device, const RunnerOptions& options) {
  switch (device.kind) {
    case DeviceKind::kCpu: return std::unique_ptr<DeviceRunner>(std::make_unique<CpuRunner>());
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda: {
      std::unique_ptr<DeviceRunner> r;
      Status s = status_from_exceptions([&] { r = std::make_unique<CudaRunner>(device.index, options); });
      if (!s.ok()) return s.error();
      return r;
    }
#endif
    default:
      return make_error(ErrorCode::kUnsupported, "no device runner for " + device.to_string() + " in this build");
  }
}

std::vector<int> graph_buckets(int max_tokens) {
#if FATHOM_WITH_CUDA
  return cuda::token_buckets(max_tokens);
#else
  return {max_tokens};
#endif
}

int graph_bucket_for(const std::vector<int>& buckets, int tokens) {
  for (int b : buckets)
    if (b >= tokens) return b;
  return -1;
}

#if FATHOM_WITH_CUDA
std::size_t graph_batch_ints(int max_seqs, int bucket) { return cuda::VarlenLayout{max_seqs, bucket}.total_ints(); }
std::size_t graph_batch_ids_offset(int max_seqs, int bucket) {
  return cuda::VarlenLayout{max_seqs, bucket}.off_input_ids();
}
std::size_t graph_batch_positions_offset(int max_seqs, int bucket) {
  return cuda::VarlenLayout{max_seqs, bucket}.off_position_ids();
}
Status fill_graph_batch(int max_seqs, int bucket, const std::vector<std::vector<int32_t>>& sequences,
                        int position_offset, int32_t pad_id, int32_t* host) {
  return status_from_exceptions([&] {
    cuda::fill_varlen(cuda::VarlenLayout{max_seqs, bucket}, sequences, position_offset, pad_id, host);
  });
}
std::size_t graph_batch_meta_ints(int max_seqs, int bucket) { return cuda::VarlenLayout{max_seqs, bucket}.off_input_ids(); }
Status fill_graph_batch_meta(int max_seqs, int bucket, const int32_t* cu, int batch, int32_t* host) {
  return status_from_exceptions([&] { cuda::fill_varlen_meta(cuda::VarlenLayout{max_seqs, bucket}, cu, batch, host); });
}
#else
std::size_t graph_batch_meta_ints(int, int) { return 0; }
Status fill_graph_batch_meta(int, int, const int32_t*, int, int32_t*) {
  return make_error(ErrorCode::kUnsupported, "graph batches need the CUDA backend");
}
std::size_t graph_batch_ints(int, int) { return 0; }
std::size_t graph_batch_ids_offset(int, int) { return 0; }
std::size_t graph_batch_positions_offset(int, int) { return 0; }
Status fill_graph_batch(int, int, const std::vector<std::vector<int32_t>>&, int, int32_t, int32_t*) {
  return make_error(ErrorCode::kUnsupported, "graph batches need the CUDA backend");
}
#endif

}  // namespace fathom::ops
