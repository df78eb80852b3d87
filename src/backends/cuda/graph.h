#pragma once
// CUDA graphs per bucket of total token count.
//
// Buckets: powers of two and the midpoints between them (16, 24, 32, 48, 64, 96, ...), capped at the
// batch token budget, which is always the last bucket. GraphCache::run(bucket, stream, body) captures
// `body` on `stream` the first time a bucket is used (body must enqueue only capturable work: no
// allocation, no sync, no host reads of device memory; everything variable is read from persistent
// device buffers) and replays the instantiated graph afterwards. Not thread-safe: one per model on the
// device worker.
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
  void clear();

 private:
  std::map<int, cudaGraphExec_t> graphs_;
};

}  // namespace fathom::cuda
