// The AES lookup tables of the table-based GPU variant, generated at compile time from the
// field arithmetic (no literal tables to mistype), host/device (SC_HOST_DEVICE constexpr),
// so the host tests and the kernels read the very same numbers.
//
// Word layout matches aes_table_core.h: a state column is a little-endian 32-bit word,
// row r in byte r.
//   te0[x] = column (2 S[x], S[x], S[x], 3 S[x])           -- MixColumns column 0
//   td0[x] = column (14 Si[x], 9 Si[x], 13 Si[x], 11 Si[x])  -- InvMixColumns column 0
//   inv_sbox_x4[x] = Si[x] in all four bytes                 -- the last decryption round
// Tables 1..3 of each direction are byte rotations of table 0 (rotl by 8, 16, 24); the
// kernel stores them rotated (aes_table_layout.h). S[x] appears in te0 itself.
#pragma once

#include <cstdint>

#include "kernels/portable.h"

namespace sectorcrypt::aes_tables {

// Product in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
SC_HOST_DEVICE constexpr uint8_t gf_mul(uint8_t a, uint8_t b) {
  uint8_t r = 0;
  for (int i = 0; i < 8; ++i) {
    if (b & 1) r ^= a;
    const bool carry = (a & 0x80) != 0;
    a = static_cast<uint8_t>(a << 1);
    if (carry) a ^= 0x1b;
    b >>= 1;
  }
  return r;
}

// x^254 (the inverse, with 0 -> 0) by square-and-multiply; compile-time only, so plain.
SC_HOST_DEVICE constexpr uint8_t gf_inv(uint8_t x) {
  uint8_t result = 1;
  uint8_t base = x;
  for (int e = 254; e != 0; e >>= 1) {
    if (e & 1) result = gf_mul(result, base);
    base = gf_mul(base, base);
  }
  return result;
}

SC_HOST_DEVICE constexpr uint8_t rotl8(uint8_t b, int k) {
  return static_cast<uint8_t>((b << k) | (b >> (8 - k)));
}

// FIPS-197 §5.1.1: the inverse followed by the affine map.
SC_HOST_DEVICE constexpr uint8_t sbox(uint8_t x) {
  const uint8_t b = gf_inv(x);
  return static_cast<uint8_t>(b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^
                              0x63);
}

// The inverse affine map followed by the inverse.
SC_HOST_DEVICE constexpr uint8_t inv_sbox(uint8_t s) {
  return gf_inv(static_cast<uint8_t>(rotl8(s, 1) ^ rotl8(s, 3) ^ rotl8(s, 6) ^ 0x05));
}

SC_HOST_DEVICE constexpr uint32_t column(uint8_t r0, uint8_t r1, uint8_t r2, uint8_t r3) {
  return uint32_t{r0} | uint32_t{r1} << 8 | uint32_t{r2} << 16 | uint32_t{r3} << 24;
}

struct AesTables {
  uint32_t te0[256];
  uint32_t td0[256];
  uint32_t inv_sbox_x4[256];
};

SC_HOST_DEVICE constexpr AesTables make_aes_tables() {
  AesTables t{};
  for (int x = 0; x < 256; ++x) {
    const uint8_t s = sbox(static_cast<uint8_t>(x));
    t.te0[x] = column(gf_mul(s, 2), s, s, gf_mul(s, 3));
    const uint8_t si = inv_sbox(static_cast<uint8_t>(x));
    t.td0[x] = column(gf_mul(si, 14), gf_mul(si, 9), gf_mul(si, 13), gf_mul(si, 11));
    t.inv_sbox_x4[x] = column(si, si, si, si);
  }
  return t;
}

SC_HOST_DEVICE constexpr uint32_t rotl32(uint32_t v, int k) {
  return k == 0 ? v : (v << k) | (v >> (32 - k));
}

}  // namespace sectorcrypt::aes_tables
