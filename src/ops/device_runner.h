#pragma once
// Per-model device execution resources, device-neutral so that one model implementation serves CPU and
// CUDA: a stream of the model's own, host staging for asynchronous copies, and whole-forward graphs keyed
// by a token-count bucket, plus the padded batch layout those graphs read.
//
// On CPU: stream() is null, staging is plain host memory, upload/download are memcpy, synchronize is a
// no-op and graphs are unsupported. On CUDA: a non-blocking stream on the model's device, page-locked
// staging, cudaMemcpyAsync on that stream, and cuda::GraphCache (capture on first use of a key, replay
// afterwards).
//
// Graph batches (CUDA only): a bucket of `bucket` padded tokens and at most `max_seqs` sequences is
// described by one int32 device buffer of graph_batch_ints(max_seqs, bucket) ints (header, cu_seqlens,
// attention tile tables, input ids, position ids) filled on the host by fill_graph_batch() and uploaded
// before replay; rows [real tokens, bucket) are a masked tail. input_ids / position_ids of the buffer sit
// at graph_batch_ids_offset / graph_batch_positions_offset (in ints).
//
// Not thread-safe: one per model, used by the thread that runs the model's forward passes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/error.h"
#include "runtime/device.h"

namespace fathom::ops {

// How a runner's stream is set up (CUDA; ignored on CPU).
struct RunnerOptions {
  int stream_priority = 0;  // levels above the default stream priority (cuda::Stream); 0 = default
  // The model's device work may overlap other models' (it runs on a device worker of its own): the runner
  // registers a private cuBLASLt workspace for its stream (cuda::BlasLt::add_stream) instead of sharing the
  // device's one.
  bool concurrent = false;
  int max_sms = 0;  // > 0: the stream lives in an SM partition of that many SMs (cuda::Stream); 0 = every SM
};

class DeviceRunner {
 public:
  virtual ~DeviceRunner() = default;
  static Result<std::unique_ptr<DeviceRunner>> create(const Device& device, const RunnerOptions& options = {});

  virtual void* stream() const = 0;  // cudaStream_t on CUDA, null on CPU
  // Whether this runner's work may overlap other models' on its device (CPU: always; CUDA: created with
  // RunnerOptions::concurrent).
  virtual bool concurrent() const = 0;
  // Host memory of at least `bytes` usable as the source / target of upload / download. Slot 0 and 1 are
  // independent buffers (inputs and outputs). Contents survive until the next staging() call for the slot
  // that grows it.
  virtual Result<void*> staging(int slot, std::size_t bytes) = 0;
  // Queued on stream(); the host buffer must stay untouched until synchronize().
  virtual Status upload(void* device_dst, const void* host_src, std::size_t bytes) = 0;
  virtual Status download(void* host_dst, const void* device_src, std::size_t bytes) = 0;
  // Waits for everything queued on stream(); reports device errors.
  virtual Status synchronize() = 0;

  virtual bool graphs_supported() const = 0;
  // Replays the graph of `key`; for a new key `body` first runs once eagerly (lazy setup outside capture, with
  // GEMM autotuning on CUDA: the pass synchronizes), then is captured on stream(). `body` must only
  // enqueue capturable work on stream() (no allocation, no synchronisation, no host reads of device data).
  // A failing body (or capture) leaves no graph for the key and returns the error.
  virtual Status run_graph(int key, const std::function<Status()>& body) = 0;
  virtual bool has_graph(int key) const = 0;
  virtual std::size_t graph_count() const = 0;
  // Drops every graph (call when memory the graphs captured is reallocated).
  virtual void clear_graphs() = 0;

  // Stage timing (diagnostics). Enabled on CUDA when the environment variable FATHOM_PROFILE_OPS is set to a
  // non-empty value other than 0 when the runner is created; otherwise every call is a no-op. mark(label)
  // ends a stage named `label` at the current point of stream() (mark(nullptr) starts a pass: the time
  // before it is not counted); marks inside graph bodies are ignored, so only eager passes are timed.
  // `label` must be a string literal (kept by pointer). profile() synchronizes and returns per label the
  // total milliseconds and the number of stages, in first-seen order.
  struct StageTime {
    const char* label;
    double ms;
    long count;
  };
  virtual bool profiling() const { return false; }
  virtual void mark(const char* /*label*/) {}
  virtual std::vector<StageTime> profile() { return {}; }
};

// Token-count buckets (16, 24, 32, 48, ... capped at max_tokens, which is the last bucket) and the
// smallest bucket >= tokens (-1 when none).
std::vector<int> graph_buckets(int max_tokens);
int graph_bucket_for(const std::vector<int>& buckets, int tokens);

// Graph batch layout (CUDA builds; on others the sizes are 0 and fill_graph_batch fails).
std::size_t graph_batch_ints(int max_seqs, int bucket);
std::size_t graph_batch_ids_offset(int max_seqs, int bucket);
std::size_t graph_batch_positions_offset(int max_seqs, int bucket);
// Fills `host` (graph_batch_ints ints): positions are position_offset + index in the sequence, tail ids
// are pad_id. kInvalidArgument when the batch does not fit (more tokens than bucket, more sequences than
// max_seqs).
Status fill_graph_batch(int max_seqs, int bucket, const std::vector<std::vector<int32_t>>& sequences,
                        int position_offset, int32_t pad_id, int32_t* host);
// The leading part of that layout that attention and pooling read (header, cu_seqlens, tile tables; no
// ids), filled from prefix sums cu [batch + 1]: graph_batch_meta_ints ints. For an eager pass that uploads
// its batch description once instead of once per op.
std::size_t graph_batch_meta_ints(int max_seqs, int bucket);
Status fill_graph_batch_meta(int max_seqs, int bucket, const int32_t* cu, int batch, int32_t* host);

}  // namespace fathom::ops
