// The kernel skeleton both AES variants share: how threads map onto sectors and blocks.
//
// Thread mapping, and why:
//  * A warp owns a group of G consecutive sectors (G = KernelArgs::sectors_per_warp, 32 for
//    large batches). The launcher lowers G for small batches so there are still enough
//    warps to fill the GPU, down to a floor that keeps phase 1 below ~1/8 of the work.
//  * Phase 1, tweaks: lane l < G encrypts sector l's IV with Key2 -- one AES per sector,
//    the 32 sectors' tweaks side by side. Doing it per sector by one lane while 31 idle
//    would cost a whole warp-AES per sector, +100% for 512-byte sectors (32 blocks, one per
//    lane); this way it costs 1/32 of that, ~3% at 512 bytes and ~0.4% at 4096.
//  * Phase 2, data: the warp walks its sectors one at a time (the constant-time kernel two
//    at a time, for its two-block cipher: xts_ct.cu). The sector tweak and key
//    index come from lane s by shuffle; lane l handles blocks l, l+32, l+64, ... with tweak
//    T * x^l, then x^32 per step (lane_walk in xts_block_core.h, two 64-bit shift steps),
//    never a per-block AES and never a serial x-chain through the whole sector.
//  * Every warp-wide load and store is 32 consecutive 16-byte uint4 = 512 contiguous bytes,
//    fully coalesced. Data is streamed (ld/st .cs): each byte is touched once.
//  * The data key is warp-uniform (one sector at a time), so round-key loads are broadcast
//    loads from L1 that the 15 rounds' worth of keys (240 bytes) keep hot; the
//    table variant's lookups are per lane and conflict-free (aes_table_layout.h).
//  * Sector sizes that are not a multiple of 512 leave some lanes idle in the last step.
//  * No __restrict__ and no read-only (.nc) loads on the data: in == out is allowed.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/cuda/xts_kernels.h"

namespace sectorcrypt::cuda::detail {

inline constexpr unsigned kFullMask = 0xffffffffu;

// Round keys read from a device key table entry as uint4, through the read-only cache.
struct LdgRoundKeys {
  const uint4* rk;
  __device__ cuda_core::Block round(int r) const {
    const uint4 v = __ldg(rk + r);
    return cuda_core::Block{{v.x, v.y, v.z, v.w}};
  }
};

__device__ inline LdgRoundKeys round_keys(const uint8_t (*rk)[16]) {
  return LdgRoundKeys{reinterpret_cast<const uint4*>(rk)};
}

// What a lane holds after phase 1: its sector's tweak and key index.
struct LaneSector {
  xts::Tweak tweak;
  uint32_t key;
};

struct WarpWork {
  uint64_t first;  // first sector of the warp's group
  uint32_t n;      // sectors in the group (0 for a warp past the end)
  int lane;
};

__device__ inline WarpWork warp_work(const KernelArgs& a) {
  const uint64_t warp = (uint64_t{blockIdx.x} * blockDim.x + threadIdx.x) / 32;
  const uint64_t first = warp * a.sectors_per_warp;
  uint32_t n = 0;
  if (first < a.count) {
    const uint64_t left = a.count - first;
    n = left < a.sectors_per_warp ? static_cast<uint32_t>(left) : a.sectors_per_warp;
  }
  return WarpWork{first, n, static_cast<int>(threadIdx.x % 32)};
}

// Phase 1. `policy.encrypt<Rounds>(block, keys)` is the variant's forward cipher. Lanes of a
// mixed AES-128/256 group diverge here, which costs time but not correctness.
template <class Policy>
__device__ LaneSector lane_sector_tweak(const KernelArgs& a, const WarpWork& w,
                                        const Policy& policy) {
  LaneSector mine{{0, 0}, 0};
  if (static_cast<uint32_t>(w.lane) < w.n) {
    const uint64_t sector = w.first + static_cast<uint64_t>(w.lane);
    mine.key = a.key_index[sector];
    const DeviceXtsKey& key = a.keys[mine.key];
    const LdgRoundKeys k2 = round_keys(key.tweak_enc);
    const uint64_t iv = a.iv_numbers[sector];
    if (key.rounds == 10) {
      mine.tweak = cuda_core::sector_tweak(
          [&](const cuda_core::Block& b) { return policy.template encrypt<10>(b, k2); },
          a.iv_mode, iv);
    } else {
      mine.tweak = cuda_core::sector_tweak(
          [&](const cuda_core::Block& b) { return policy.template encrypt<14>(b, k2); },
          a.iv_mode, iv);
    }
  }
  return mine;
}

template <int Rounds, Direction Dir, class Policy>
__device__ void crypt_sector(const uint4* src, uint4* dst, uint32_t blocks,
                             const xts::Tweak& tweak, const DeviceXtsKey& key, int lane,
                             const Policy& policy) {
  const LdgRoundKeys k1 = round_keys(Dir == Direction::encrypt ? key.data_enc : key.data_dec);
  const auto cipher = [&](const cuda_core::Block& b) {
    if constexpr (Dir == Direction::encrypt) {
      return policy.template encrypt<Rounds>(b, k1);
    } else {
      return policy.template decrypt<Rounds>(b, k1);
    }
  };
  const auto load = [&](uint32_t j) {
    const uint4 v = __ldcs(src + j);
    return cuda_core::Block{{v.x, v.y, v.z, v.w}};
  };
  const auto store = [&](uint32_t j, const cuda_core::Block& b) {
    __stcs(dst + j, make_uint4(b.w[0], b.w[1], b.w[2], b.w[3]));
  };
  cuda_core::lane_walk(cipher, tweak, lane, blocks, load, store);
}

// Phase 2: the warp's sectors in turn; the Rounds branch is warp-uniform.
template <Direction Dir, class Policy>
__device__ void walk_sectors(const KernelArgs& a, const WarpWork& w, const LaneSector& mine,
                             const Policy& policy) {
  const uint32_t blocks = a.sector_size / 16;
  for (uint32_t s = 0; s < w.n; ++s) {
    const xts::Tweak t{__shfl_sync(kFullMask, mine.tweak.lo, static_cast<int>(s)),
                       __shfl_sync(kFullMask, mine.tweak.hi, static_cast<int>(s))};
    const DeviceXtsKey& key = a.keys[__shfl_sync(kFullMask, mine.key, static_cast<int>(s))];
    const uint64_t offset = (w.first + s) * a.sector_size;
    const uint4* src = reinterpret_cast<const uint4*>(a.in + offset);
    uint4* dst = reinterpret_cast<uint4*>(a.out + offset);
    if (key.rounds == 10) {
      crypt_sector<10, Dir>(src, dst, blocks, t, key, w.lane, policy);
    } else {
      crypt_sector<14, Dir>(src, dst, blocks, t, key, w.lane, policy);
    }
  }
}

}  // namespace sectorcrypt::cuda::detail
