// GPU discovery (gpu_devices.h). Built in every configuration; without CUDA it only says so.
#include "engine/gpu_devices.h"

#include "engine/numa_node.h"

#include <string>

#if defined(SECTORCRYPT_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

#ifndef SECTORCRYPT_CUDA_MIN_ARCH
#define SECTORCRYPT_CUDA_MIN_ARCH 90
#endif

namespace sectorcrypt {

#if defined(SECTORCRYPT_HAVE_CUDA)

GpuInventory discover_gpus() {
  GpuInventory inv;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // do not leave the failure for the caller's next check
    // cudaErrorNoDevice: a driver without GPUs; anything else: no (usable) driver at all.
    inv.why_none = std::string(err == cudaErrorNoDevice ? "no CUDA device" : "no CUDA driver") +
                   ": cudaGetDeviceCount: " + cudaGetErrorString(err);
    return inv;
  }
  if (count == 0) {
    inv.why_none = "no CUDA device found (cudaGetDeviceCount returned 0)";
    return inv;
  }
  // The build carries sm_XY machine code and compute_XY PTX for its lowest architecture,
  // so any device at or above it runs the kernels (older ones cannot).
  constexpr int kMinMajor = SECTORCRYPT_CUDA_MIN_ARCH / 10;
  constexpr int kMinMinor = SECTORCRYPT_CUDA_MIN_ARCH % 10;
  std::string unusable;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    err = cudaGetDeviceProperties(&prop, i);
    if (err != cudaSuccess) {
      cudaGetLastError();
      unusable += "; device " + std::to_string(i) +
                  ": cudaGetDeviceProperties: " + cudaGetErrorString(err);
      continue;
    }
    if (prop.major < kMinMajor || (prop.major == kMinMajor && prop.minor < kMinMinor)) {
      unusable += "; device " + std::to_string(i) + " (" + prop.name + ") has compute " +
                  std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                  ", this build needs " + std::to_string(kMinMajor) + "." +
                  std::to_string(kMinMinor) + " or later";
      continue;
    }
    GpuInfo info;
    info.ordinal = i;
    info.name = prop.name;
    info.memory_bytes = prop.totalGlobalMem;
    info.compute_major = prop.major;
    info.compute_minor = prop.minor;
    char bus_id[32] = {};
    if (cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), i) == cudaSuccess) {
      info.pci_bus_id = bus_id;
      info.numa_node = numa_node_of_pci_device("/sys", bus_id);
    } else {
      cudaGetLastError();
    }
    inv.gpus.push_back(std::move(info));
  }
  if (inv.gpus.empty()) inv.why_none = "no usable CUDA device" + unusable;
  return inv;
}

#else

GpuInventory discover_gpus() {
  GpuInventory inv;
  inv.why_none = "built without CUDA support";
  return inv;
}

#endif

}  // namespace sectorcrypt
