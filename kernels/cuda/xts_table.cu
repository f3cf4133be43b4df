// The table-based AES-XTS kernel: T-tables replicated per lane in shared memory
// (aes_table_layout.h), rounds from aes_table_core.h, walk from xts_walk.cuh.
//
// Shared memory per 1024-thread block: 128 KiB for encryption (Te0..Te3), 160 KiB for
// decryption (Td0..Td3 and the inverse S-box), as dynamic shared memory. Decryption still
// needs Te for the tweaks, so its phase 1 runs on Te and the space is then refilled with Td
// (two more barriers and 160 KiB of stores per block, next to 32 warps x 32 sectors of
// work) rather than holding both, which would not fit.
#include <cuda_runtime.h>

#include "kernels/cuda/aes_table_core.h"
#include "kernels/cuda/aes_table_layout.h"
#include "kernels/cuda/aes_tables.h"
#include "kernels/cuda/xts_kernels.h"
#include "kernels/cuda/xts_walk.cuh"

namespace sectorcrypt::cuda::detail {
namespace {

constexpr int kThreads = 32 * kTableWarpsPerBlock;

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

constexpr std::size_t smem_bytes(Direction dir) {
  return sizeof(uint32_t) * (dir == Direction::encrypt ? cuda_core::kEncryptTableWords
                                                       : cuda_core::kDecryptTableWords);
}

template <Direction Dir>
__global__ void __launch_bounds__(kThreads, 1) xts_table_kernel(KernelArgs a) {
  extern __shared__ uint32_t smem[];
  const int tid = static_cast<int>(threadIdx.x);

  cuda_core::fill_direction(smem, kTables.te0, nullptr, tid, kThreads);
  __syncthreads();
  const WarpWork w = warp_work(a);
  const TablePolicy policy{cuda_core::LaneTables{smem, static_cast<uint32_t>(w.lane)}};
  const LaneSector mine = lane_sector_tweak(a, w, policy);
  if constexpr (Dir == Direction::decrypt) {
    __syncthreads();  // every warp is done with Te
    cuda_core::fill_direction(smem, kTables.td0, kTables.inv_sbox_x4, tid, kThreads);
    __syncthreads();
  }
  walk_sectors<Dir>(a, w, mine, policy);
}

}  // namespace

cudaError_t launch_table_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                                cudaStream_t stream) {
  const void* fn = dir == Direction::encrypt
                       ? reinterpret_cast<const void*>(&xts_table_kernel<Direction::encrypt>)
                       : reinterpret_cast<const void*>(&xts_table_kernel<Direction::decrypt>);
  const std::size_t smem = smem_bytes(dir);
  // Above 48 KiB a kernel must opt in. Setting it on every launch is a host-side attribute
  // write (no allocation, no synchronisation) and stays right whichever device is current.
  cudaError_t e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(smem));
  if (e != cudaSuccess) return e;
  const dim3 grid(static_cast<unsigned>((warps + kTableWarpsPerBlock - 1) / kTableWarpsPerBlock));
  KernelArgs copy = args;
  void* params[] = {&copy};
  return cudaLaunchKernel(fn, grid, dim3(kThreads), params, smem, stream);
}

}  // namespace sectorcrypt::cuda::detail
