// The table-based AES-XTS kernel: T-tables replicated per lane in shared memory
// (aes_table_layout.h), rounds from aes_table_core.h, walk from xts_walk.cuh.
//
// Shared memory per 256-thread block: 32 KiB for encryption (te0), 40 KiB for decryption
// (td0 + packed inverse S-box). Decryption still needs te0 for the tweaks, so its phase 1
// runs on te0 and the same space is then refilled with td0 (two extra barriers and 32 KiB
// of stores per block, small next to 8 * 32 sectors of work) instead of holding 72 KiB,
// which would halve the blocks an SM can hold and need an opt-in attribute call.
#include <cuda_runtime.h>

#include "kernels/cuda/aes_table_core.h"
#include "kernels/cuda/aes_table_layout.h"
#include "kernels/cuda/aes_tables.h"
#include "kernels/cuda/xts_kernels.h"
#include "kernels/cuda/xts_walk.cuh"

namespace sectorcrypt::cuda::detail {
namespace {

// Built by the compiler from the field arithmetic; read once per thread block, warp-uniform
// (constant memory's broadcast case).
__constant__ aes_tables::AesTables kTables = aes_tables::make_aes_tables();

struct TablePolicy {
  cuda_core::LaneTables t;
  template <int Rounds>
  __device__ cuda_core::Block encrypt(const cuda_core::Block& b, const LdgRoundKeys& k) const {
    return cuda_core::table_encrypt<Rounds>(b, k, t);
  }
  template <int Rounds>
  __device__ cuda_core::Block decrypt(const cuda_core::Block& b, const LdgRoundKeys& k) const {
    return cuda_core::table_decrypt<Rounds>(b, k, t);
  }
};

template <Direction Dir>
__global__ void __launch_bounds__(kThreadsPerBlock) xts_table_kernel(KernelArgs a) {
  constexpr int kWords = cuda_core::kColumnTableWords +
                         (Dir == Direction::decrypt ? cuda_core::kInvSboxWords : 0);
  // 128-byte aligned so word 0 is in bank 0 and lane l's copy in bank l.
  __shared__ __align__(128) uint32_t smem[kWords];
  uint32_t* cols = smem;
  uint32_t* inv = Dir == Direction::decrypt ? smem + cuda_core::kColumnTableWords : nullptr;
  const int tid = static_cast<int>(threadIdx.x);

  cuda_core::fill_replicated(cols, kTables.te0, 256, tid, kThreadsPerBlock);
  __syncthreads();
  const WarpWork w = warp_work(a);
  const TablePolicy policy{cuda_core::LaneTables(cols, inv, w.lane)};
  const LaneSector mine = lane_sector_tweak(a, w, policy);
  if constexpr (Dir == Direction::decrypt) {
    __syncthreads();  // every warp is done with te0
    cuda_core::fill_replicated(cols, kTables.td0, 256, tid, kThreadsPerBlock);
    cuda_core::fill_replicated(inv, kTables.inv_sbox4, 64, tid, kThreadsPerBlock);
    __syncthreads();
  }
  walk_sectors<Dir>(a, w, mine, policy);
}

}  // namespace

cudaError_t launch_table_kernel(const KernelArgs& args, Direction dir, dim3 grid,
                                cudaStream_t stream) {
  KernelArgs copy = args;
  void* params[] = {&copy};
  const void* fn = dir == Direction::encrypt
                       ? reinterpret_cast<const void*>(&xts_table_kernel<Direction::encrypt>)
                       : reinterpret_cast<const void*>(&xts_table_kernel<Direction::decrypt>);
  return cudaLaunchKernel(fn, grid, dim3(kThreadsPerBlock), params, 0, stream);
}

}  // namespace sectorcrypt::cuda::detail
