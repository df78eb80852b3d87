#pragma once
// CUDA graphs per bucket of total token count.
//
// Buckets: powers of two and the midpoints between them (16, 24, 32, 48, 64, 96, ...), capped at the
// batch token budget, which is always the last bucket. GraphCache::run(bucket, stream, body) captures
// `body` on `stream` the first time a bucket is used (body must enqueue only capturable work: no
// allocation, no sync, no host reads of device memory; everything variable is read from persistent
// device buffers) and replays the instantiated graph afterwards. Not thread-safe: one per model on the
// device worker.
//
// Early launch inside graphs: a kernel launched with launch_pdl (kernels/common.cuh) after another kernel
// is captured behind a programmatic edge, which by default fires when the kernel before it finishes (the
// cuBLASLt kernels before most of ours never signal earlier). Before instantiating, run() moves every such
// edge to the upstream kernel's launch-completion port: the dependent kernel's blocks are scheduled once
// every upstream block has started, and its griddep_wait() holds them until the upstream grid completed
// with its writes visible. The launch latency between the two kernels is hidden; results are unchanged.
// FATHOM_CUDA_PDL=0 turns launch_pdl, and so this, off.
#include <cuda_runtime_api.h>

#include <functional>
#include <map>
#include <vector>

namespace fathom::cuda {

std::vector<int> token_buckets(int max_tokens, int min_bucket = 16);
// Smallest bucket >= tokens; -1 when tokens exceed the largest bucket.
int bucket_for(const std::vector<int>& buckets, int tokens);

class GraphCache {
 public:
  GraphCache() = default;
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // Replays (capturing first if needed) the graph of `bucket`. Throws fathom::Exception if capture fails.
  void run(int bucket, cudaStream_t stream, const std::function<void(cudaStream_t)>& body);
  bool has(int bucket) const { return graphs_.count(bucket) != 0; }
  std::size_t size() const { return graphs_.size(); }
  // Edges moved to a launch-completion port (above) in the graphs captured so far.
  std::size_t early_launch_edges() const { return early_edges_; }
  void clear();

 private:
  std::map<int, cudaGraphExec_t> graphs_;
  std::size_t early_edges_ = 0;
};

}  // namespace fathom::cuda
