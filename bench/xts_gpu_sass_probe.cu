// Probe kernels for bench/xts_gpu_ptxas.sh: each runs one piece of the bitsliced32 cipher
// on a slice loaded from and stored to global memory, so that the size of its machine code
// (16 bytes an instruction on sm_90), less the load/store-only probe's, counts the
// instructions that piece costs per thread, i.e. per 32 blocks. Compiled to a cubin by the
// script only; never linked or run.
#include <cuda_runtime.h>

#include "kernels/cuda/aes_bitsliced32_core.h"
#include "kernels/cuda/aes_bitsliced_core.h"

namespace sectorcrypt::bitsliced32 {

// One thread's slice as 32 consecutive uint4.
__device__ void load(Slice& s, const uint32_t* in) {
  const uint4* p = reinterpret_cast<const uint4*>(in) + threadIdx.x * (kWords / 4);
#pragma unroll
  for (int q = 0; q < kWords / 4; ++q) {
    const uint4 v = p[q];
    s.w[4 * q] = v.x;
    s.w[4 * q + 1] = v.y;
    s.w[4 * q + 2] = v.z;
    s.w[4 * q + 3] = v.w;
  }
}

__device__ void store(const Slice& s, uint32_t* out) {
  uint4* p = reinterpret_cast<uint4*>(out) + threadIdx.x * (kWords / 4);
#pragma unroll
  for (int q = 0; q < kWords / 4; ++q) {
    p[q] = make_uint4(s.w[4 * q], s.w[4 * q + 1], s.w[4 * q + 2], s.w[4 * q + 3]);
  }
}

struct SharedKeys {
  const uint4* quads;
  __device__ void xor_round(int r, uint32_t (&w)[kWords]) const {
#pragma unroll
    for (int q = 0; q < kWords / 4; ++q) {
      const uint4 k = quads[r * (kWords / 4) + q];
      w[4 * q] ^= k.x;
      w[4 * q + 1] ^= k.y;
      w[4 * q + 2] ^= k.z;
      w[4 * q + 3] ^= k.w;
    }
  }
};

extern "C" __global__ void probe_io(const uint32_t* in, uint32_t* out) {
  Slice s;
  load(s, in);
  store(s, out);
}

extern "C" __global__ void probe_transpose(const uint32_t* in, uint32_t* out) {
  Slice s;
  load(s, in);
  transpose(s);
  store(s, out);
}

extern "C" __global__ void probe_sub_bytes(const uint32_t* in, uint32_t* out) {
  Slice s;
  load(s, in);
  sub_bytes(s);
  store(s, out);
}

extern "C" __global__ void probe_inv_sub_bytes(const uint32_t* in, uint32_t* out) {
  Slice s;
  load(s, in);
  inv_sub_bytes(s);
  store(s, out);
}

template <Direction Dir>
__device__ void one_round(const uint32_t* in, uint32_t* out, const uint4* keys) {
  __shared__ uint4 quads[kWords / 4];
  if (threadIdx.x < kWords / 4) quads[threadIdx.x] = keys[threadIdx.x];
  __syncthreads();
  Slice s;
  load(s, in);
  if constexpr (Dir == Direction::encrypt) {
    sub_bytes(s);
  } else {
    inv_sub_bytes(s);
  }
  Slice m;
  shift_mix<Dir>(s, m);
  add_round_key(m, SharedKeys{quads}, 0);
  store(m, out);
}

extern "C" __global__ void probe_enc_round(const uint32_t* in, uint32_t* out, const uint4* keys) {
  one_round<Direction::encrypt>(in, out, keys);
}

extern "C" __global__ void probe_dec_round(const uint32_t* in, uint32_t* out, const uint4* keys) {
  one_round<Direction::decrypt>(in, out, keys);
}

// The same with no round key, to see what the key costs.
extern "C" __global__ void probe_enc_round_nokey(const uint32_t* in, uint32_t* out) {
  Slice s;
  load(s, in);
  sub_bytes(s);
  Slice m;
  shift_mix<Direction::encrypt>(s, m);
  store(m, out);
}

// The kernel's gather and scatter around no cipher, with the tweaks shuffled from lanes
// as xts_bs32.cu does: 4 KiB sectors (8 columns a sector) and 512-byte ones (1).
template <uint32_t SectorSize>
__device__ void gather_scatter(const uint8_t* in, uint8_t* out, uint64_t tlo, uint64_t thi) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  constexpr uint32_t kBlocksPerSector = SectorSize / 16;
  constexpr uint32_t kSegments = (kBlocksPerSector + 31) / 32;
  const StepGeometry g{0, kSegments, kBlocksPerSector, 32, ~0u};
  // Each lane's own sector tweak, as in the kernel (a uniform one would let the compiler
  // drop the shuffles).
  const uint64_t my_lo = tlo ^ threadIdx.x, my_hi = thi + threadIdx.x;
  const auto sector_tweak = [&](uint32_t sector) {
    const int src = static_cast<int>(sector & 31u);
    return xts::Tweak{__shfl_sync(0xffffffffu, my_lo, src), __shfl_sync(0xffffffffu, my_hi, src)};
  };
  const auto load = [&](uint32_t sector, uint32_t block) {
    const uint4 v = __ldcs(reinterpret_cast<const uint4*>(in + sector * SectorSize) + block);
    return cuda_core::Block{{v.x, v.y, v.z, v.w}};
  };
  const auto store_block = [&](uint32_t sector, uint32_t block, const cuda_core::Block& b) {
    __stcs(reinterpret_cast<uint4*>(out + sector * SectorSize) + block,
           make_uint4(b.w[0], b.w[1], b.w[2], b.w[3]));
  };
  Slice s;
  gather(s, g, lane, sector_tweak, load);
  scatter(s, g, lane, sector_tweak, store_block);
}

extern "C" __global__ void probe_gather_scatter(const uint8_t* in, uint8_t* out, uint64_t tlo,
                                                uint64_t thi) {
  gather_scatter<4096>(in, out, tlo, thi);
}

extern "C" __global__ void probe_gather_scatter_512(const uint8_t* in, uint8_t* out, uint64_t tlo,
                                                    uint64_t thi) {
  gather_scatter<512>(in, out, tlo, thi);
}

// For calibration: one round of the constant_time kernel's two-block fixsliced cipher
// (aes_bitsliced_core.h), 8 words in and out: its instructions per round per 2 blocks.
extern "C" __global__ void probe_ct_pair_enc_round(const uint4* in, uint4* out, const uint4* keys) {
  const uint4 a = in[2 * threadIdx.x], b = in[2 * threadIdx.x + 1];
  bitsliced::State st{{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
  const uint4 ka = keys[0], kb = keys[1];
  bitsliced::sub_bytes(st);
  bitsliced::mix_columns_offset<1>(st);
  bitsliced::add_round_key(st, bitsliced::State{{ka.x, ka.y, ka.z, ka.w, kb.x, kb.y, kb.z, kb.w}});
  out[2 * threadIdx.x] = make_uint4(st.p[0], st.p[1], st.p[2], st.p[3]);
  out[2 * threadIdx.x + 1] = make_uint4(st.p[4], st.p[5], st.p[6], st.p[7]);
}

extern "C" __global__ void probe_ct_pair_dec_round(const uint4* in, uint4* out, const uint4* keys) {
  const uint4 a = in[2 * threadIdx.x], b = in[2 * threadIdx.x + 1];
  bitsliced::State st{{a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w}};
  const uint4 ka = keys[0], kb = keys[1];
  bitsliced::inv_sub_bytes(st);
  bitsliced::inv_mix_columns_offset<-1>(st);
  bitsliced::add_round_key(st, bitsliced::State{{ka.x, ka.y, ka.z, ka.w, kb.x, kb.y, kb.z, kb.w}});
  out[2 * threadIdx.x] = make_uint4(st.p[0], st.p[1], st.p[2], st.p[3]);
  out[2 * threadIdx.x + 1] = make_uint4(st.p[4], st.p[5], st.p[6], st.p[7]);
}

extern "C" __global__ void probe_ct_pair_io(const uint4* in, uint4* out, const uint4* keys) {
  const uint4 a = in[2 * threadIdx.x], b = in[2 * threadIdx.x + 1];
  const uint4 ka = keys[0], kb = keys[1];
  out[2 * threadIdx.x] = make_uint4(a.x ^ ka.x, a.y ^ ka.y, a.z ^ ka.z, a.w ^ ka.w);
  out[2 * threadIdx.x + 1] = make_uint4(b.x ^ kb.x, b.y ^ kb.y, b.z ^ kb.z, b.w ^ kb.w);
}

}  // namespace sectorcrypt::bitsliced32
