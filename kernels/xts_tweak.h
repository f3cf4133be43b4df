// XTS tweak arithmetic in GF(2^128) (IEEE 1619 §5.2), shared by every kernel and compiled
// for the GPU too (SC_HOST_DEVICE). The tweak is the 16-byte block as a little-endian
// 128-bit integer: multiplying by x is a left shift by one with the carry out of bit 127
// folded back as 0x87 (x^7 + x^2 + x + 1). All of it is branch-free.
#pragma once

#include <cstdint>

#include "kernels/portable.h"

namespace sectorcrypt::xts {

struct Tweak {
  uint64_t lo;  // bytes 0..7, little-endian
  uint64_t hi;  // bytes 8..15
};

SC_HOST_DEVICE Tweak load_tweak(const uint8_t* p) {
  Tweak t{0, 0};
  for (int i = 0; i < 8; ++i) {
    t.lo |= uint64_t{p[i]} << (8 * i);
    t.hi |= uint64_t{p[8 + i]} << (8 * i);
  }
  return t;
}

SC_HOST_DEVICE void store_tweak(const Tweak& t, uint8_t* p) {
  for (int i = 0; i < 8; ++i) {
    p[i] = static_cast<uint8_t>(t.lo >> (8 * i));
    p[8 + i] = static_cast<uint8_t>(t.hi >> (8 * i));
  }
}

// T * x.
SC_HOST_DEVICE Tweak mul_x(const Tweak& t) {
  const uint64_t carry = t.hi >> 63;
  return Tweak{(t.lo << 1) ^ (0x87 & (0 - carry)), (t.hi << 1) | (t.lo >> 63)};
}

// T * x^k for 0 <= k <= 56 in one step: the k bits shifted out of the top are reduced by
// a carry-less multiply by 0x87 (o ^ o<<1 ^ o<<2 ^ o<<7), which stays inside the low word
// because o < 2^k and k + 7 < 64. Lets a kernel jump straight to block j of a data unit.
SC_HOST_DEVICE Tweak mul_x_pow(const Tweak& t, int k) {
  if (k == 0) return t;
  const uint64_t over = t.hi >> (64 - k);
  const uint64_t folded = over ^ (over << 1) ^ (over << 2) ^ (over << 7);
  return Tweak{(t.lo << k) ^ folded, (t.hi << k) | (t.lo >> (64 - k))};
}

// dst = src ^ T for one 16-byte block.
SC_HOST_DEVICE void xor_block(const uint8_t* src, const Tweak& t, uint8_t* dst) {
  for (int i = 0; i < 8; ++i) {
    dst[i] = static_cast<uint8_t>(src[i] ^ (t.lo >> (8 * i)));
    dst[8 + i] = static_cast<uint8_t>(src[8 + i] ^ (t.hi >> (8 * i)));
  }
}

}  // namespace sectorcrypt::xts
