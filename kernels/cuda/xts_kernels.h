// Internal to kernels/cuda: the validated kernel arguments and one launcher per AES variant
// (each in its own .cu file so nvcc builds them in parallel). launch_xts() (xts_launch.cc)
// checks the batch and picks the launcher.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/xts_cuda.h"
#include "kernels/sector_format.h"

namespace sectorcrypt::cuda::detail {

inline constexpr int kWarpsPerBlock = 8;  // 256 threads: small enough for several blocks
                                          // per SM with the table variant's 32-40 KiB
inline constexpr int kThreadsPerBlock = 32 * kWarpsPerBlock;

struct KernelArgs {
  const uint8_t* in;
  uint8_t* out;
  uint64_t count;              // sectors
  uint32_t sector_size;        // 512..4096, multiple of 16
  uint32_t sectors_per_warp;   // 1..32: a warp's group (see xts_walk.cuh)
  IvMode iv_mode;
  const uint64_t* iv_numbers;
  const uint32_t* key_index;
  const DeviceXtsKey* keys;
};

// Enqueue only; the return value is cudaLaunchKernel's.
cudaError_t launch_table_kernel(const KernelArgs& args, Direction dir, dim3 grid,
                                cudaStream_t stream);
cudaError_t launch_ct_kernel(const KernelArgs& args, Direction dir, dim3 grid,
                             cudaStream_t stream);

}  // namespace sectorcrypt::cuda::detail
