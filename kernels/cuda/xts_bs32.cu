// The `bitsliced32` constant-time AES-XTS kernel: 32 blocks per thread, bitsliced across
// 128 words (aes_bitsliced32_core.h); no table, no data-dependent address or branch.
//
// Mapping, on top of xts_walk.cuh's warp groups (here of up to 64 sectors): phase 1 (the
// sector tweaks) runs the two-block constant-time cipher on two sectors per lane, so it
// costs half as much per sector as one sector per lane would. The data phase
// cuts the group into columns of 32 blocks (StepGeometry) and takes 32 columns a step:
// every lane loads its block of each column (one coalesced 512-byte load per column),
// XORs the tweak, transposes into slices, runs AES, transposes back and stores.
//
// Round keys: the slices of the step's keys (15 x 128 words) sit in the warp's slice of
// shared memory and are read as broadcasts. When every column uses one key they are
// all-ones or all-zero words, built with four stores per lane and round and kept while
// the key stays the same; columns with different keys take 128 ballots a round. A step
// whose columns mix AES-128 and AES-256 keys runs once per key size, each run storing
// only its own columns.
#include <cuda_runtime.h>

#include "kernels/cuda/aes_bitsliced32_core.h"
#include "kernels/cuda/aes_bitsliced_core.h"
#include "kernels/cuda/xts_block_core.h"
#include "kernels/cuda/xts_kernels.h"
#include "kernels/cuda/xts_walk.cuh"

namespace sectorcrypt::cuda::detail {
namespace {

using bitsliced32::kWords;

constexpr int kThreads = 32 * kBs32WarpsPerBlock;
constexpr int kSliceQuads = kWords / 4;  // uint4 per round
constexpr int kKeyQuads = (bitsliced32::kMaxRounds + 1) * kSliceQuads;

// Phase 1: lane l encrypts the tweaks of sectors l and l + 32 of the group (a group holds up
// to 64 sectors) in one call of the two-block bitsliced AES, each slot with its sector's
// tweak key; sectors whose key sizes differ take a call each.
struct LanePair {
  xts::Tweak tweak[2];
  uint32_t key[2];
};

__device__ LanePair lane_pair_tweaks(const KernelArgs& a, const WarpWork& w) {
  LanePair p{{{0, 0}, {0, 0}}, {0, 0}};
  const uint32_t s0 = static_cast<uint32_t>(w.lane), s1 = s0 + 32;
  if (s0 >= w.n) return p;
  const uint32_t n1 = s1 < w.n ? s1 : s0;  // a missing second sector repeats the first
  p.key[0] = a.key_index[w.first + s0];
  p.key[1] = a.key_index[w.first + n1];
  const DeviceXtsKey& k0 = a.keys[p.key[0]];
  const DeviceXtsKey& k1 = a.keys[p.key[1]];
  const cuda_core::Block iv0 = cuda_core::iv_block(a.iv_mode, a.iv_numbers[w.first + s0]);
  const cuda_core::Block iv1 = cuda_core::iv_block(a.iv_mode, a.iv_numbers[w.first + n1]);
  const int r0 = k0.rounds == 10 ? 10 : 14;  // anything else reads as 14
  const int r1 = k1.rounds == 10 ? 10 : 14;
  using Keys = bitsliced::PackedKeys<Direction::encrypt, LdgRoundKeys>;
  cuda_core::Block t0, t1, unused;
  if (r0 == r1) {
    bitsliced::crypt_pair<Direction::encrypt>(Keys{round_keys(k0.tweak_enc), round_keys(k1.tweak_enc)},
                                              r0, iv0, iv1, &t0, &t1);
  } else {
    bitsliced::crypt_pair<Direction::encrypt>(Keys{round_keys(k0.tweak_enc), round_keys(k0.tweak_enc)},
                                              r0, iv0, iv0, &t0, &unused);
    bitsliced::crypt_pair<Direction::encrypt>(Keys{round_keys(k1.tweak_enc), round_keys(k1.tweak_enc)},
                                              r1, iv1, iv1, &t1, &unused);
  }
  p.tweak[0] = cuda_core::to_tweak(t0);
  p.tweak[1] = cuda_core::to_tweak(t1);
  return p;
}

// A group sector's key index or tweak, from the lane that encrypted it. `s` is the same on
// every lane for the tweak; for keys each lane asks for its own column's sector.
__device__ uint32_t sector_key(const LanePair& p, uint32_t s) {
  const uint32_t k0 = __shfl_sync(kFullMask, p.key[0], static_cast<int>(s & 31u));
  const uint32_t k1 = __shfl_sync(kFullMask, p.key[1], static_cast<int>(s & 31u));
  return s < 32 ? k0 : k1;
}

__device__ xts::Tweak sector_tweak(const LanePair& p, uint32_t s) {
  const int src = static_cast<int>(s & 31u);
  const bool second = s >= 32;  // warp-uniform
  const uint64_t lo = second ? p.tweak[1].lo : p.tweak[0].lo;
  const uint64_t hi = second ? p.tweak[1].hi : p.tweak[0].hi;
  return xts::Tweak{__shfl_sync(kFullMask, lo, src), __shfl_sync(kFullMask, hi, src)};
}

// Round-key slices in shared memory: round r is kSliceQuads uint4, word i in quad i / 4.
struct SharedKeySlices {
  const uint4* quads;
  __device__ void xor_round(int r, uint32_t (&w)[kWords]) const {
#pragma unroll
    for (int q = 0; q < kSliceQuads; ++q) {
      const uint4 k = quads[r * kSliceQuads + q];
      w[4 * q] ^= k.x;
      w[4 * q + 1] ^= k.y;
      w[4 * q + 2] ^= k.z;
      w[4 * q + 3] ^= k.w;
    }
  }
};

__device__ const uint4* schedule(const DeviceXtsKey& k, Direction dir) {
  return reinterpret_cast<const uint4*>(dir == Direction::encrypt ? k.data_enc : k.data_dec);
}

// Every column uses `key`: slice word i is all ones where bit i of the round key is set.
// Lane l writes words l, l + 32, l + 64, l + 96 of each round.
template <Direction Dir>
__device__ void build_uniform_slices(const DeviceXtsKey& key, int rounds, int lane,
                                     uint32_t* words) {
  const uint4* rk = schedule(key, Dir);
  for (int r = 0; r <= rounds; ++r) {
    const uint4 v = __ldg(rk + r);
    const cuda_core::Block b{{v.x, v.y, v.z, v.w}};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      words[r * kWords + 32 * k + lane] = bitsliced32::uniform_key_word(b, 32 * k + lane);
    }
  }
}

// Column `lane` uses `key`: word 32 k + b of a round is the ballot of bit b of round-key
// word k over the lanes, kept by lane b.
template <Direction Dir>
__device__ void build_mixed_slices(const DeviceXtsKey& key, int rounds, int lane,
                                   uint32_t* words) {
  const uint4* rk = schedule(key, Dir);
  for (int r = 0; r <= rounds; ++r) {
    const uint4 v = __ldg(rk + r);
    const uint32_t src[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint32_t mine = 0;
#pragma unroll
      for (int b = 0; b < 32; ++b) {
        const uint32_t ballot = __ballot_sync(kFullMask, (src[k] >> b) & 1u);
        if (lane == b) mine = ballot;
      }
      words[r * kWords + 32 * k + lane] = mine;
    }
  }
}

template <Direction Dir>
__device__ void walk_columns(const KernelArgs& a, const WarpWork& w, const LanePair& mine,
                             uint4* quads) {
  const uint32_t blocks = a.sector_size / 16;
  const uint32_t segments = (blocks + 31) / 32;
  const uint32_t columns = w.n * segments;
  uint32_t cached_key = ~0u;  // the key whose uniform slices `quads` holds
  int cached_rounds = 0;
  for (uint32_t base = 0; base < columns; base += 32) {
    // This lane stands for column base + lane when the keys are gathered.
    const uint32_t column = base + static_cast<uint32_t>(w.lane);
    const bool exists = column < columns;
    const uint32_t sector = (exists ? column : base) / segments;
    const uint32_t key_index = sector_key(mine, sector);
    const DeviceXtsKey& key = a.keys[key_index];
    const int rounds = key.rounds == 10 ? 10 : 14;  // anything else reads as 14, as in phase 1
    for (const int pass : {10, 14}) {
      const uint32_t take = __ballot_sync(kFullMask, exists && rounds == pass);
      if (take == 0) continue;  // warp-uniform
      const int leader = __ffs(static_cast<int>(take)) - 1;
      const uint32_t leader_key = __shfl_sync(kFullMask, key_index, leader);
      const bool in_pass = ((take >> w.lane) & 1u) != 0;
      const bool uniform = __all_sync(kFullMask, !in_pass || key_index == leader_key);
      __syncwarp();  // the previous step is done reading the slices
      uint32_t* words = reinterpret_cast<uint32_t*>(quads);
      if (!uniform) {
        build_mixed_slices<Dir>(in_pass ? key : a.keys[leader_key], pass, w.lane, words);
        cached_key = ~0u;
      } else if (leader_key != cached_key || pass != cached_rounds) {
        build_uniform_slices<Dir>(a.keys[leader_key], pass, w.lane, words);
        cached_key = leader_key;
        cached_rounds = pass;
      }
      __syncwarp();

      const bitsliced32::StepGeometry g{base, segments, blocks, columns, take};
      const auto tweak_of = [&](uint32_t s) { return sector_tweak(mine, s); };
      const auto load = [&](uint32_t s, uint32_t block) {
        const uint4 v = __ldcs(reinterpret_cast<const uint4*>(
                                   a.in + (w.first + s) * uint64_t{a.sector_size}) +
                               block);
        return cuda_core::Block{{v.x, v.y, v.z, v.w}};
      };
      const auto store = [&](uint32_t s, uint32_t block, const cuda_core::Block& b) {
        __stcs(reinterpret_cast<uint4*>(a.out + (w.first + s) * uint64_t{a.sector_size}) + block,
               make_uint4(b.w[0], b.w[1], b.w[2], b.w[3]));
      };
      bitsliced32::Slice s;
      bitsliced32::gather(s, g, w.lane, tweak_of, load);
      bitsliced32::crypt<Dir>(s, SharedKeySlices{quads}, pass);
      bitsliced32::scatter(s, g, w.lane, tweak_of, store);
    }
  }
}

template <Direction Dir>
__global__ void __launch_bounds__(kThreads) xts_bs32_kernel(KernelArgs a) {
  __shared__ uint4 quads[kBs32WarpsPerBlock][kKeyQuads];
  const WarpWork w = warp_work(a);
  const LanePair mine = lane_pair_tweaks(a, w);
  walk_columns<Dir>(a, w, mine, quads[threadIdx.x / 32]);
}

}  // namespace

cudaError_t launch_bs32_kernel(const KernelArgs& args, Direction dir, uint64_t warps,
                               cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((warps + kBs32WarpsPerBlock - 1) / kBs32WarpsPerBlock));
  KernelArgs copy = args;
  void* params[] = {&copy};
  const void* fn = dir == Direction::encrypt
                       ? reinterpret_cast<const void*>(&xts_bs32_kernel<Direction::encrypt>)
                       : reinterpret_cast<const void*>(&xts_bs32_kernel<Direction::decrypt>);
  return cudaLaunchKernel(fn, grid, dim3(kThreads), params, 0, stream);
}

}  // namespace sectorcrypt::cuda::detail
