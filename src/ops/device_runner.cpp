#include "ops/device_runner.h"

#include <cstring>
#include <string>

#if FATHOM_WITH_CUDA
#include <cuda_runtime_api.h>

#include "backends/cuda/allocator.h"
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
  explicit CudaRunner(int device) : device_(device), stream_(device) { (void)cuda::device_blas(device); }
  void* stream() const override { return stream_.get(); }
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
    return status_from_exceptions([&] { stream_.synchronize(); });
  }
  bool graphs_supported() const override { return true; }
  Status run_graph(int key, const std::function<Status()>& body) override {
    if (!graphs_.has(key)) {
      // One eager pass first: lazy per-shape setup (GEMM plans, kernel attributes) happens outside capture.
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

 private:
  int device_;
  cuda::Stream stream_;
  cuda::PinnedBuffer pinned_[2];
  cuda::GraphCache graphs_;
};
#endif

}  // namespace

Result<std::unique_ptr<DeviceRunner>> DeviceRunner::create(const Device& device) {
  switch (device.kind) {
    case DeviceKind::kCpu: return std::unique_ptr<DeviceRunner>(std::make_unique<CpuRunner>());
#if FATHOM_WITH_CUDA
    case DeviceKind::kCuda: {
      std::unique_ptr<DeviceRunner> r;
      Status s = status_from_exceptions([&] { r = std::make_unique<CudaRunner>(device.index); });
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
#else
std::size_t graph_batch_ints(int, int) { return 0; }
std::size_t graph_batch_ids_offset(int, int) { return 0; }
std::size_t graph_batch_positions_offset(int, int) { return 0; }
Status fill_graph_batch(int, int, const std::vector<std::vector<int32_t>>&, int, int32_t, int32_t*) {
  return make_error(ErrorCode::kUnsupported, "graph batches need the CUDA backend");
}
#endif

}  // namespace fathom::ops
