#include "backends/cuda/sm_partition.h"

#include <cuda.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cuda/check.h"
#include "backends/cuda/device.h"
#include "base/error.h"

namespace fathom::cuda {
namespace {

// Driver entry points of the green-context API (CUDA 12.4+), resolved for this header's ABI version.
struct GreenApi {
  CUresult (*device_get)(CUdevice*, int) = nullptr;
  CUresult (*get_resource)(CUdevice, CUdevResource*, CUdevResourceType) = nullptr;
  CUresult (*split)(CUdevResource*, unsigned*, const CUdevResource*, CUdevResource*, unsigned, unsigned) = nullptr;
  CUresult (*generate_desc)(CUdevResourceDesc*, CUdevResource*, unsigned) = nullptr;
  CUresult (*create)(CUgreenCtx*, CUdevResourceDesc, CUdevice, unsigned) = nullptr;
  CUresult (*destroy)(CUgreenCtx) = nullptr;
  CUresult (*stream_create)(CUstream*, CUgreenCtx, unsigned, int) = nullptr;
  bool ok = false;
};

template <typename F>
bool resolve(const char* name, F& fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found{};
  if (cudaGetDriverEntryPointByVersion(name, &p, CUDA_VERSION, cudaEnableDefault, &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess || p == nullptr) {
    (void)cudaGetLastError();
    return false;
  }
  fn = reinterpret_cast<F>(p);
  return true;
}

const GreenApi& green_api() {
  static const GreenApi api = [] {
    GreenApi a;
    a.ok = resolve("cuDeviceGet", a.device_get) && resolve("cuDeviceGetDevResource", a.get_resource) &&
           resolve("cuDevSmResourceSplitByCount", a.split) && resolve("cuDevResourceGenerateDesc", a.generate_desc) &&
           resolve("cuGreenCtxCreate", a.create) && resolve("cuGreenCtxDestroy", a.destroy) &&
           resolve("cuGreenCtxStreamCreate", a.stream_create);
    return a;
  }();
  return api;
}

void check(CUresult r, const char* what, int device) {
  if (r != CUDA_SUCCESS)
    throw Exception(ErrorCode::kUnsupported, std::string("cannot create an SM partition on cuda:") +
                                                 std::to_string(device) + ": " + what + " failed (CUresult " +
                                                 std::to_string(static_cast<int>(r)) + ")");
}

// One device's SMs as seen by partitions: the whole SM resource split once, at the device's granularity,
// into equal groups (one split, because a green context may only combine groups of the same split). A
// partition takes whole groups no other live partition holds, so partitions never share an SM. What the
// split leaves over (12 SMs on a 132-SM H100: 15 groups of 8) is not handed out: its SMs carry no
// co-scheduling guarantee, and on the H100 a partition that included them ran bge-large slower than the
// same partition without them (6,698 against 7,132 texts/s on 108 and 96 SMs). They stay with the streams
// that have no partition.
struct DeviceGroups {
  CUdevice dev{};
  std::vector<CUdevResource> groups;  // the split's equal groups
  std::vector<bool> taken;
  int group_sms = 0;                  // SMs per group
  int total_sms = 0;
  int free_sms() const { return group_sms * static_cast<int>(std::count(taken.begin(), taken.end(), false)); }
};

struct LivePartition {
  int device = 0;
  int sms = 0;
  std::vector<int> groups;  // indices into that device's DeviceGroups
};

std::mutex g_partitions_mu;                         // guards both tables
std::map<int, DeviceGroups> g_devices;              // devices a partition was ever made on
std::map<cudaStream_t, LivePartition> g_partitions;  // live partition streams

DeviceGroups& device_groups(int device) {  // caller holds g_partitions_mu
  auto it = g_devices.find(device);
  if (it != g_devices.end()) return it->second;
  const GreenApi& api = green_api();
  FATHOM_CUDA_CHECK(cudaSetDevice(device));
  FATHOM_CUDA_CHECK(cudaFree(nullptr));  // the primary context exists before a green context retains it
  DeviceGroups d;
  check(api.device_get(&d.dev, device), "cuDeviceGet", device);
  CUdevResource all{};
  check(api.get_resource(d.dev, &all, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource", device);
  d.total_sms = static_cast<int>(all.sm.smCount);
  const unsigned granularity = std::max(1u, all.sm.minSmPartitionSize);
  unsigned n = 0;
  check(api.split(nullptr, &n, &all, nullptr, 0, granularity), "cuDevSmResourceSplitByCount (count)", device);
  if (n == 0) check(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "splitting the device into groups", device);
  d.groups.resize(n);
  check(api.split(d.groups.data(), &n, &all, nullptr, 0, granularity), "cuDevSmResourceSplitByCount", device);
  d.groups.resize(n);
  d.taken.assign(d.groups.size(), false);
  d.group_sms = static_cast<int>(d.groups.front().sm.smCount);
  return g_devices.emplace(device, std::move(d)).first->second;
}

std::string sm_limit_error(int device, int min_sms, const DeviceGroups& d) {
  const int partitionable = d.group_sms * static_cast<int>(d.groups.size());
  return "an SM limit of " + std::to_string(min_sms) + " on cuda:" + std::to_string(device) +
         " does not fit: " + std::to_string(d.free_sms()) + " of the " + std::to_string(partitionable) +
         " SMs that partitions can use are free (the device has " + std::to_string(d.total_sms) + " SMs in " +
         std::to_string(d.groups.size()) + " groups of " + std::to_string(d.group_sms) +
         "; other models' partitions hold " + std::to_string(partitionable - d.free_sms()) + ")";
}

}  // namespace

SmPartition create_sm_partition(int device, int min_sms, int priority) {
  const int total = device_sm_count(device);
  if (min_sms < 1 || min_sms >= total)
    throw Exception(ErrorCode::kInvalidArgument, "an SM limit of " + std::to_string(min_sms) + " on cuda:" +
                                                     std::to_string(device) + " must be between 1 and " +
                                                     std::to_string(total - 1) + " (the device has " +
                                                     std::to_string(total) + " SMs)");
  const GreenApi& api = green_api();
  if (!api.ok)
    throw Exception(ErrorCode::kUnsupported, "the CUDA driver offers no green contexts (SM partitions need CUDA 12.4+)");
  std::lock_guard<std::mutex> lock(g_partitions_mu);
  DeviceGroups& d = device_groups(device);
  const int wanted = (min_sms + d.group_sms - 1) / d.group_sms;
  std::vector<int> picked;  // the first `wanted` free groups in split order
  std::vector<CUdevResource> resources;
  for (std::size_t i = 0; i < d.groups.size() && static_cast<int>(picked.size()) < wanted; ++i)
    if (!d.taken[i]) {
      picked.push_back(static_cast<int>(i));
      resources.push_back(d.groups[i]);
    }
  if (static_cast<int>(picked.size()) < wanted)
    throw Exception(ErrorCode::kInvalidArgument, sm_limit_error(device, min_sms, d));
  CUdevResourceDesc desc{};
  check(api.generate_desc(&desc, resources.data(), static_cast<unsigned>(resources.size())),
        "cuDevResourceGenerateDesc", device);
  SmPartition p;
  CUgreenCtx ctx{};
  check(api.create(&ctx, desc, d.dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate", device);
  p.green_context = ctx;
  CUstream s{};
  if (CUresult r = api.stream_create(&s, ctx, CU_STREAM_NON_BLOCKING, priority); r != CUDA_SUCCESS) {
    api.destroy(ctx);
    check(r, "cuGreenCtxStreamCreate", device);
  }
  p.stream = reinterpret_cast<cudaStream_t>(s);
  p.sms = wanted * d.group_sms;
  for (int i : picked) d.taken[i] = true;
  g_partitions[p.stream] = LivePartition{device, p.sms, std::move(picked)};
  return p;
}

void destroy_sm_partition(SmPartition& partition) {
  if (partition.stream) cudaStreamDestroy(partition.stream);
  if (partition.green_context && green_api().destroy) green_api().destroy(static_cast<CUgreenCtx>(partition.green_context));
  if (partition.stream) {  // its SMs go back to the device's free groups once nothing can run on them
    std::lock_guard<std::mutex> lock(g_partitions_mu);
    if (auto it = g_partitions.find(partition.stream); it != g_partitions.end()) {
      DeviceGroups& d = g_devices.at(it->second.device);
      for (int i : it->second.groups) d.taken[i] = false;
      g_partitions.erase(it);
    }
  }
  partition = SmPartition{};
}

int partition_sm_count(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_partitions_mu);
  auto it = g_partitions.find(stream);
  return it == g_partitions.end() ? 0 : it->second.sms;
}

int stream_sm_count(cudaStream_t stream, int device) {
  const int sms = partition_sm_count(stream);
  return sms > 0 ? sms : device_sm_count(device);
}

}  // namespace fathom::cuda
