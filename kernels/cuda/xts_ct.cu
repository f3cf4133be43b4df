// The constant-time AES-XTS kernel: no table, no data-dependent address or branch; the
// rounds are aes_ct_core.h's (through ct_encrypt/ct_decrypt in xts_block_core.h), the very
// code the host reference runs. Walk from xts_walk.cuh.
#include <cuda_runtime.h>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/cuda/xts_kernels.h"
#include "kernels/cuda/xts_walk.cuh"

namespace sectorcrypt::cuda::detail {
namespace {

struct CtPolicy {
  template <int Rounds>
  __device__ cuda_core::Block encrypt(const cuda_core::Block& b, const LdgRoundKeys& k) const {
    return cuda_core::ct_encrypt(b, k, Rounds);
  }
  template <int Rounds>
  __device__ cuda_core::Block decrypt(const cuda_core::Block& b, const LdgRoundKeys& k) const {
    return cuda_core::ct_decrypt(b, k, Rounds);
  }
};

template <Direction Dir>
__global__ void __launch_bounds__(kThreadsPerBlock) xts_ct_kernel(KernelArgs a) {
  const WarpWork w = warp_work(a);
  const CtPolicy policy;
  const LaneSector mine = lane_sector_tweak(a, w, policy);
  walk_sectors<Dir>(a, w, mine, policy);
}

}  // namespace

cudaError_t launch_ct_kernel(const KernelArgs& args, Direction dir, dim3 grid,
                             cudaStream_t stream) {
  KernelArgs copy = args;
  void* params[] = {&copy};
  const void* fn = dir == Direction::encrypt
                       ? reinterpret_cast<const void*>(&xts_ct_kernel<Direction::encrypt>)
                       : reinterpret_cast<const void*>(&xts_ct_kernel<Direction::decrypt>);
  return cudaLaunchKernel(fn, grid, dim3(kThreadsPerBlock), params, 0, stream);
}

}  // namespace sectorcrypt::cuda::detail
