// The constant-time AES-XTS kernel: bitsliced AES on two blocks per lane
// (aes_bitsliced_core.h); no table, no data-dependent address or branch.
//
// Mapping, on top of xts_walk.cuh's: the two-block cipher wants two independent blocks per
// lane, so a warp walks its sectors two at a time, lane l taking block j of both (j = l,
// l + 32, ...); a 512-byte sector pair is then one cipher call per lane, like 4096 bytes
// is four. The two sectors may use different keys: the round keys are packed per slot.
// Their planes (15 x 8 words) are packed once per sector pair, one round per lane, into
// the warp's slice of shared memory and read back as broadcasts. A pair whose key sizes
// differ, or the last sector of an odd group, goes alone (its slot 1 repeats slot 0 and
// is not stored).
#include <cuda_runtime.h>

#include "kernels/cuda/aes_bitsliced_core.h"
#include "kernels/cuda/xts_block_core.h"
#include "kernels/cuda/xts_kernels.h"
#include "kernels/cuda/xts_walk.cuh"

namespace sectorcrypt::cuda::detail {
namespace {

constexpr int kPlaneWords = 8 * 15;  // round key planes of one sector pair

// Phase 1's cipher: one block (both slots the same), keys packed on the fly per lane.
struct CtPolicy {
  template <int Rounds>
  __device__ cuda_core::Block encrypt(const cuda_core::Block& b, const LdgRoundKeys& k) const {
    cuda_core::Block out, unused;
    bitsliced::crypt_pair<Direction::encrypt>(
        bitsliced::PackedKeys<Direction::encrypt, LdgRoundKeys>{k, k}, Rounds,
                                              b, b, &out, &unused);
    return out;
  }
};

// Round key planes prepacked in shared memory.
struct SharedKeyPlanes {
  const uint4* planes_;
  __device__ bitsliced::State planes(int r) const {
    const uint4 lo = planes_[2 * r];
    const uint4 hi = planes_[2 * r + 1];
    return bitsliced::State{{lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w}};
  }
};

template <Direction Dir>
__device__ void walk_sector_pairs(const KernelArgs& a, const WarpWork& w, const LaneSector& mine,
                                  uint4* planes) {
  const uint32_t blocks = a.sector_size / 16;
  for (uint32_t s = 0; s < w.n;) {
    uint32_t s1 = s + 1 < w.n ? s + 1 : s;
    const uint32_t key0 = __shfl_sync(kFullMask, mine.key, static_cast<int>(s));
    uint32_t key1 = __shfl_sync(kFullMask, mine.key, static_cast<int>(s1));
    const DeviceXtsKey* k0 = a.keys + key0;
    const DeviceXtsKey* k1 = a.keys + key1;
    // Anything but 10 reads as 14, as in phase 1: the planes buffer holds 15 rounds.
    const int rounds = k0->rounds == 10 ? 10 : 14;
    if ((k1->rounds == 10 ? 10 : 14) != rounds) {  // warp-uniform: no shared round loop
      s1 = s;
      k1 = k0;
    }
    const bool single = s1 == s;
    const xts::Tweak t0{__shfl_sync(kFullMask, mine.tweak.lo, static_cast<int>(s)),
                        __shfl_sync(kFullMask, mine.tweak.hi, static_cast<int>(s))};
    const xts::Tweak t1{__shfl_sync(kFullMask, mine.tweak.lo, static_cast<int>(s1)),
                        __shfl_sync(kFullMask, mine.tweak.hi, static_cast<int>(s1))};

    __syncwarp();  // the previous pair is done reading the planes
    if (w.lane <= rounds) {
      const auto schedule = [&](const DeviceXtsKey* k) {
        return round_keys(Dir == Direction::encrypt ? k->data_enc : k->data_dec);
      };
      const bitsliced::State p = bitsliced::fixslice_key<Dir>(
          bitsliced::pack(schedule(k0).round(w.lane), schedule(k1).round(w.lane)), w.lane);
      planes[2 * w.lane] = make_uint4(p.p[0], p.p[1], p.p[2], p.p[3]);
      planes[2 * w.lane + 1] = make_uint4(p.p[4], p.p[5], p.p[6], p.p[7]);
    }
    __syncwarp();

    const SharedKeyPlanes keys{planes};
    const uint64_t off0 = (w.first + s) * a.sector_size;
    const uint64_t off1 = (w.first + s1) * a.sector_size;
    const uint4* src[2] = {reinterpret_cast<const uint4*>(a.in + off0),
                           reinterpret_cast<const uint4*>(a.in + off1)};
    uint4* dst[2] = {reinterpret_cast<uint4*>(a.out + off0),
                     reinterpret_cast<uint4*>(a.out + off1)};
    const auto cipher = [&](const cuda_core::Block& x0, const cuda_core::Block& x1,
                            cuda_core::Block* y0, cuda_core::Block* y1) {
      bitsliced::crypt_pair<Dir>(keys, rounds, x0, x1, y0, y1);
    };
    const auto load = [&](int slot, uint32_t j) {
      const uint4 v = __ldcs(src[slot] + j);
      return cuda_core::Block{{v.x, v.y, v.z, v.w}};
    };
    const auto store = [&](int slot, uint32_t j, const cuda_core::Block& b) {
      if (slot == 1 && single) return;
      __stcs(dst[slot] + j, make_uint4(b.w[0], b.w[1], b.w[2], b.w[3]));
    };
    cuda_core::lane_walk_pair(cipher, t0, t1, w.lane, blocks, load, store);
    s = s1 + 1;
  }
}

constexpr int kThreads = 32 * kCtWarpsPerBlock;

template <Direction Dir>
__global__ void __launch_bounds__(kThreads) xts_ct_kernel(KernelArgs a) {
  __shared__ uint4 planes[kCtWarpsPerBlock][kPlaneWords / 4];
  const WarpWork w = warp_work(a);
  const LaneSector mine = lane_sector_tweak(a, w, CtPolicy{});
  walk_sector_pairs<Dir>(a, w, mine, planes[threadIdx.x / 32]);
}

}  // namespace

cudaError_t launch_ct_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                             cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((warps + kCtWarpsPerBlock - 1) / kCtWarpsPerBlock));
  KernelArgs copy = args;
  void* params[] = {&copy};
  const void* fn = dir == Direction::encrypt
                       ? reinterpret_cast<const void*>(&xts_ct_kernel<Direction::encrypt>)
                       : reinterpret_cast<const void*>(&xts_ct_kernel<Direction::decrypt>);
  return cudaLaunchKernel(fn, grid, dim3(kThreads), params, 0, stream);
}

}  // namespace sectorcrypt::cuda::detail
