#include "backends/cuda/sm_partition.h"

#include <cuda.h>

#include <map>
#include <mutex>
#include <string>

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

std::mutex g_partitions_mu;
std::map<cudaStream_t, int> g_partition_sms;  // live partition streams and their SM counts

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
  FATHOM_CUDA_CHECK(cudaSetDevice(device));
  FATHOM_CUDA_CHECK(cudaFree(nullptr));  // the primary context exists before a green context retains it
  CUdevice dev{};
  check(api.device_get(&dev, device), "cuDeviceGet", device);
  CUdevResource all{};
  check(api.get_resource(dev, &all, CU_DEV_RESOURCE_TYPE_SM), "cuDeviceGetDevResource", device);
  CUdevResource group{}, rest{};
  unsigned groups = 1;
  check(api.split(&group, &groups, &all, &rest, 0, static_cast<unsigned>(min_sms)), "cuDevSmResourceSplitByCount",
        device);
  if (groups != 1) check(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION, "splitting off one group", device);
  CUdevResourceDesc desc{};
  check(api.generate_desc(&desc, &group, 1), "cuDevResourceGenerateDesc", device);
  SmPartition p;
  CUgreenCtx ctx{};
  check(api.create(&ctx, desc, dev, CU_GREEN_CTX_DEFAULT_STREAM), "cuGreenCtxCreate", device);
  p.green_context = ctx;
  CUstream s{};
  if (CUresult r = api.stream_create(&s, ctx, CU_STREAM_NON_BLOCKING, priority); r != CUDA_SUCCESS) {
    api.destroy(ctx);
    check(r, "cuGreenCtxStreamCreate", device);
  }
  p.stream = reinterpret_cast<cudaStream_t>(s);
  p.sms = static_cast<int>(group.sm.smCount);
  std::lock_guard<std::mutex> lock(g_partitions_mu);
  g_partition_sms[p.stream] = p.sms;
  return p;
}

void destroy_sm_partition(SmPartition& partition) {
  if (partition.stream) {
    {
      std::lock_guard<std::mutex> lock(g_partitions_mu);
      g_partition_sms.erase(partition.stream);
    }
    cudaStreamDestroy(partition.stream);
  }
  if (partition.green_context && green_api().destroy) green_api().destroy(static_cast<CUgreenCtx>(partition.green_context));
  partition = SmPartition{};
}

int partition_sm_count(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(g_partitions_mu);
  auto it = g_partition_sms.find(stream);
  return it == g_partition_sms.end() ? 0 : it->second;
}

int stream_sm_count(cudaStream_t stream, int device) {
  const int sms = partition_sm_count(stream);
  return sms > 0 ? sms : device_sm_count(device);
}

}  // namespace fathom::cuda
