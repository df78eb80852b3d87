#pragma once
// SM partitions: a stream whose kernels run on a subset of a device's streaming multiprocessors (a CUDA
// green context), so that a heavy model cannot occupy every SM and other models' kernels always find free
// ones. The partition shares the device's memory with the rest of the process: buffers allocated anywhere
// on the device are used as usual; only where kernels may run is limited.
//
// The driver functions are reached through cudaGetDriverEntryPointByVersion, so nothing links libcuda and a
// machine without a driver still loads the program (creating a partition then fails with kUnsupported).
// Partitions of one device never share an SM: the device is split once into equal groups (8 SMs on sm_90;
// 15 of them on a 132-SM H100) and each partition takes groups no other live partition holds, so a light
// model given a partition of its own runs on SMs a heavy model's partition cannot fill. SMs outside every
// partition (free groups, and the 12 the split leaves over on an H100) stay open to streams without a
// partition, which may run on any SM. Thread-safe: the groups held and the partition streams' SM counts are kept in
// process-wide tables under a mutex.
#include <cuda_runtime_api.h>

namespace fathom::cuda {

struct SmPartition {
  cudaStream_t stream = nullptr;  // non-blocking, at the requested priority; kernels run on `sms` SMs
  void* green_context = nullptr;  // CUgreenCtx; owned, release with destroy_sm_partition
  int sms = 0;                    // SMs in the partition (the request rounded up to the device's granularity)
};

// Creates a partition of at least `min_sms` SMs of `device` (1 <= min_sms < the device's SM count; rounded
// up to whole groups), disjoint from every other live partition of the device, and a stream
// in it with CUDA priority `priority` (cudaDeviceGetStreamPriorityRange units). Throws fathom::Exception:
// kInvalidArgument for a count outside that range or more SMs than the free groups hold (the message names
// the free and held counts), kUnsupported when the driver has no green contexts.
SmPartition create_sm_partition(int device, int min_sms, int priority);

// Destroys the stream and the green context (after the stream's work finished) and frees its groups for
// later partitions. Null-safe.
void destroy_sm_partition(SmPartition& partition);

// SMs of the partition whose stream is `stream` (between create_sm_partition and destroy_sm_partition);
// 0 for every other stream. Kernels that size their grids to the device ask this first.
int partition_sm_count(cudaStream_t stream);

// The SMs `stream`'s kernels may run on: its partition's, or every SM of `device`.
int stream_sm_count(cudaStream_t stream, int device);

}  // namespace fathom::cuda
