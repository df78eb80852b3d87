#include "backends/cuda/graph.h"

#include <string>
#include <vector>

#include "backends/cuda/check.h"

namespace fathom::cuda {

std::vector<int> token_buckets(int max_tokens, int min_bucket) {
  std::vector<int> b;
  for (int p = min_bucket; p < max_tokens; p *= 2) {
    b.push_back(p);
    const int mid = p + p / 2;
    if (mid < max_tokens) b.push_back(mid);
  }
  b.push_back(max_tokens);
  return b;
}

int bucket_for(const std::vector<int>& buckets, int tokens) {
  for (int b : buckets)
    if (b >= tokens) return b;
  return -1;
}

namespace {

// Moves the programmatic edges of `graph` (kernel -> kernel launched with launch_pdl) from the upstream's
// programmatic port to its launch-completion port; returns how many it moved.
std::size_t launch_dependents_early(cudaGraph_t graph) {
  std::size_t n = 0;
  FATHOM_CUDA_CHECK(cudaGraphGetEdges(graph, nullptr, nullptr, nullptr, &n));
  std::vector<cudaGraphNode_t> from(n), to(n);
  std::vector<cudaGraphEdgeData> data(n);
  FATHOM_CUDA_CHECK(cudaGraphGetEdges(graph, from.data(), to.data(), data.data(), &n));
  std::size_t moved = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (data[i].type != cudaGraphDependencyTypeProgrammatic || data[i].from_port != cudaGraphKernelNodePortProgrammatic)
      continue;
    cudaGraphEdgeData early = data[i];
    early.from_port = cudaGraphKernelNodePortLaunchCompletion;
    FATHOM_CUDA_CHECK(cudaGraphRemoveDependencies(graph, &from[i], &to[i], &data[i], 1));
    FATHOM_CUDA_CHECK(cudaGraphAddDependencies(graph, &from[i], &to[i], &early, 1));
    ++moved;
  }
  return moved;
}

}  // namespace

GraphCache::~GraphCache() { clear(); }

void GraphCache::clear() {
  for (auto& [b, g] : graphs_) cudaGraphExecDestroy(g);
  graphs_.clear();
}

void GraphCache::run(int bucket, cudaStream_t stream, const std::function<void(cudaStream_t)>& body) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) {
    FATHOM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      body(stream);
    } catch (...) {
      cudaGraph_t broken = nullptr;
      cudaStreamEndCapture(stream, &broken);
      if (broken) cudaGraphDestroy(broken);
      (void)cudaGetLastError();
      throw;
    }
    cudaGraph_t graph = nullptr;
    FATHOM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
    try {
      early_edges_ += launch_dependents_early(graph);
    } catch (...) {
      cudaGraphDestroy(graph);
      throw;
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t err = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    FATHOM_CUDA_CHECK(err);
    it = graphs_.emplace(bucket, exec).first;
  }
  FATHOM_CUDA_CHECK(cudaGraphLaunch(it->second, stream));
}

}  // namespace fathom::cuda
