// The per-block XTS step the CUDA kernels run, as host/device code (SC_HOST_DEVICE), so the
// CPU tests run exactly this arithmetic: the block type, the IV block, the lane walk over a
// sector's tweaks (one sector, or two side by side for the two-block bitsliced AES), and
// E(P ^ T) ^ T.
//
// The lane walk (see kernels/cuda/xts_walk.cuh for why): a warp owns a sector and lane l
// handles blocks j = l, l + 32, l + 64, ...; its first tweak is T * x^l and each step
// multiplies by x^32. The sector tweak T is encrypted once per sector, never per block.
#pragma once

#include <cstdint>

#include "kernels/portable.h"
#include "kernels/sector_format.h"
#include "kernels/xts_tweak.h"

namespace sectorcrypt::cuda_core {

inline constexpr int kLanes = 32;

// 16 bytes as four little-endian 32-bit words (an AES state column each; uint4 on the GPU).
struct Block {
  uint32_t w[4];
};

SC_HOST_DEVICE Block load_block(const uint8_t* p) {
  Block b{{0, 0, 0, 0}};
  for (int i = 0; i < 16; ++i) b.w[i >> 2] |= uint32_t{p[i]} << (8 * (i & 3));
  return b;
}

SC_HOST_DEVICE void store_block(const Block& b, uint8_t* p) {
  for (int i = 0; i < 16; ++i) p[i] = static_cast<uint8_t>(b.w[i >> 2] >> (8 * (i & 3)));
}

SC_HOST_DEVICE xts::Tweak to_tweak(const Block& b) {
  return xts::Tweak{uint64_t{b.w[0]} | uint64_t{b.w[1]} << 32,
                    uint64_t{b.w[2]} | uint64_t{b.w[3]} << 32};
}

SC_HOST_DEVICE Block xor_tweak(const Block& b, const xts::Tweak& t) {
  return Block{{b.w[0] ^ static_cast<uint32_t>(t.lo), b.w[1] ^ static_cast<uint32_t>(t.lo >> 32),
                b.w[2] ^ static_cast<uint32_t>(t.hi), b.w[3] ^ static_cast<uint32_t>(t.hi >> 32)}};
}

SC_HOST_DEVICE uint32_t byte_swap32(uint32_t v) {
  return (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
}

// make_iv() built in registers (no byte array that could land in local memory).
SC_HOST_DEVICE Block iv_block(IvMode mode, uint64_t n) {
  const uint32_t lo = static_cast<uint32_t>(n);
  const uint32_t hi = static_cast<uint32_t>(n >> 32);
  switch (mode) {
    case IvMode::plain:
      return Block{{lo, 0, 0, 0}};
    case IvMode::plain64be:
      return Block{{0, 0, byte_swap32(hi), byte_swap32(lo)}};
    case IvMode::plain64:
    default:
      return Block{{lo, hi, 0, 0}};
  }
}

// Tweak of lane `lane`'s first block (block `lane`): T * x^lane, one step since lane < 32.
SC_HOST_DEVICE xts::Tweak lane_first_tweak(const xts::Tweak& sector_tweak, int lane) {
  return xts::mul_x_pow(sector_tweak, lane);
}

// From block j's tweak to block j + 32's.
SC_HOST_DEVICE xts::Tweak lane_next_tweak(const xts::Tweak& t) {
  return xts::mul_x_pow(t, kLanes);
}

// One XTS block: C = E(P ^ T) ^ T (decryption alike with the inverse cipher). `cipher` maps
// a Block to a Block with the data key in the batch's direction.
template <class Cipher>
SC_HOST_DEVICE Block xts_block(const Cipher& cipher, const xts::Tweak& t, const Block& in) {
  return xor_tweak(cipher(xor_tweak(in, t)), t);
}

// The encrypted sector tweak T = E_K2(IV): once per sector.
template <class TweakCipher>
SC_HOST_DEVICE xts::Tweak sector_tweak(const TweakCipher& tweak_cipher, IvMode mode,
                                       uint64_t iv_number) {
  return to_tweak(tweak_cipher(iv_block(mode, iv_number)));
}

// One lane's share of a sector of `blocks` blocks: blocks lane, lane + 32, ... `load(j)` and
// `store(j, block)` reach block j of the sector (global memory on the GPU, arrays in tests).
template <class Cipher, class Load, class Store>
SC_HOST_DEVICE void lane_walk(const Cipher& cipher, const xts::Tweak& sector_tweak, int lane,
                              uint32_t blocks, const Load& load, const Store& store) {
  xts::Tweak t = lane_first_tweak(sector_tweak, lane);
  for (uint32_t j = static_cast<uint32_t>(lane); j < blocks; j += kLanes) {
    store(j, xts_block(cipher, t, load(j)));
    t = lane_next_tweak(t);
  }
}

// The same walk over two sectors of equal size at once, block j of each (slot 0: sector A,
// slot 1: sector B), for a cipher that takes two blocks: `cipher(in0, in1, &out0, &out1)`.
// `load(slot, j)` and `store(slot, j, block)` reach block j of the slot's sector.
template <class PairCipher, class Load, class Store>
SC_HOST_DEVICE void lane_walk_pair(const PairCipher& cipher, const xts::Tweak& tweak0,
                                   const xts::Tweak& tweak1, int lane, uint32_t blocks,
                                   const Load& load, const Store& store) {
  xts::Tweak t0 = lane_first_tweak(tweak0, lane);
  xts::Tweak t1 = lane_first_tweak(tweak1, lane);
  for (uint32_t j = static_cast<uint32_t>(lane); j < blocks; j += kLanes) {
    Block y0, y1;
    cipher(xor_tweak(load(0, j), t0), xor_tweak(load(1, j), t1), &y0, &y1);
    store(0, j, xor_tweak(y0, t0));
    store(1, j, xor_tweak(y1, t1));
    t0 = lane_next_tweak(t0);
    t1 = lane_next_tweak(t1);
  }
}

// Round keys as bytes (AesRoundKeys::rk, DeviceXtsKey's arrays): the host's key source. The
// GPU reads the same layout as uint4 (see xts_walk.cuh).
struct ByteRoundKeys {
  const uint8_t (*rk)[16];
  SC_HOST_DEVICE Block round(int r) const { return load_block(rk[r]); }
};

}  // namespace sectorcrypt::cuda_core
