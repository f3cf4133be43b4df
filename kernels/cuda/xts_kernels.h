// Internal to kernels/cuda: the validated kernel arguments and one launcher per AES variant
// (each in its own .cu file so nvcc builds them in parallel). launch_xts() (xts_launch.cc)
// checks the batch and picks the launcher.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/xts_cuda.h"
#include "kernels/sector_format.h"

namespace sectorcrypt::cuda::detail {

// Thread block sizes. The table variant holds 128-160 KiB of tables per block, so one
// block per SM: 1024 threads give it 32 warps to hide shared-memory latency. The
// constant-time variant needs 4 KiB; 256 threads let several blocks share an SM.
inline constexpr int kTableWarpsPerBlock = 32;
inline constexpr int kCtWarpsPerBlock = 8;
// bitsliced32 holds 7.5 KiB of round-key slices per warp and ~200 registers per thread, so
// few warps fit an SM anyway; 4 per block keep the blocks small.
inline constexpr int kBs32WarpsPerBlock = 4;

struct KernelArgs {
  const uint8_t* in;
  uint8_t* out;
  uint64_t count;              // sectors
  uint32_t sector_size;        // 512..4096, multiple of 16
  uint32_t sectors_per_warp;   // 1..32 (bitsliced32: 1..64): a warp's group (xts_walk.cuh)
  IvMode iv_mode;
  const uint64_t* iv_numbers;
  const uint32_t* key_index;
  const DeviceXtsKey* keys;
};

// Enqueue `warps` warps' worth of thread blocks; no allocation, no synchronisation. The
// return value is the first failing CUDA call's (or cudaSuccess).
cudaError_t launch_table_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                                cudaStream_t stream);
cudaError_t launch_ct_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                             cudaStream_t stream);
cudaError_t launch_bs32_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                               cudaStream_t stream);

}  // namespace sectorcrypt::cuda::detail
