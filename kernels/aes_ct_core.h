// Constant-time AES round functions on a 16-byte state held as two 64-bit words.
//
// No table lookups: SubBytes computes the GF(2^8) inverse as x^254 with carry-less
// multiplies done eight bytes at a time in a 64-bit word (SWAR), followed by the affine
// map. Every operation is a shift, AND, XOR or multiply by a constant, so timing does not
// depend on the data or the key. It is slow next to AES-NI, which is fine: this is the
// portable reference (the oracle of every faster kernel) and the constant-time GPU
// variant's round function, compiled for both host and device (SC_HOST_DEVICE).
//
// Layout: state byte b (FIPS-197 column-major, b = 4*column + row) is bits 8*(b%8).. of
// word b/8, i.e. a little-endian load of the 16 bytes.
#pragma once

#include <cstdint>

#include "kernels/portable.h"

namespace sectorcrypt::aes_ct {

struct State {
  uint64_t w[2];
};

constexpr uint64_t kBytes01 = 0x0101010101010101ull;

// Multiplies each byte by x in GF(2^8) (the AES polynomial x^8+x^4+x^3+x+1).
SC_HOST_DEVICE uint64_t xtime8(uint64_t a) {
  return ((a & 0x7f7f7f7f7f7f7f7full) << 1) ^ (((a >> 7) & kBytes01) * 0x1b);
}

// Byte-wise GF(2^8) product of eight byte pairs.
SC_HOST_DEVICE uint64_t gf_mul8(uint64_t a, uint64_t b) {
  uint64_t r = 0;
  for (int i = 0; i < 8; ++i) {
    r ^= a & (((b >> i) & kBytes01) * 0xff);  // mask of bytes whose bit i of b is set
    a = xtime8(a);
  }
  return r;
}

// Byte-wise inverse (0 maps to 0) as x^254: x^2, x^3, x^6, x^12, x^15, x^30, x^60,
// x^120, x^240, x^252, x^254.
SC_HOST_DEVICE uint64_t gf_inv8(uint64_t x) {
  uint64_t x2 = gf_mul8(x, x);
  uint64_t x3 = gf_mul8(x2, x);
  uint64_t x6 = gf_mul8(x3, x3);
  uint64_t x12 = gf_mul8(x6, x6);
  uint64_t x15 = gf_mul8(x12, x3);
  uint64_t x30 = gf_mul8(x15, x15);
  uint64_t x60 = gf_mul8(x30, x30);
  uint64_t x120 = gf_mul8(x60, x60);
  uint64_t x240 = gf_mul8(x120, x120);
  uint64_t x252 = gf_mul8(x240, x12);
  return gf_mul8(x252, x2);
}

// Rotates every byte left by k bits (1 <= k <= 7).
SC_HOST_DEVICE uint64_t rotl8(uint64_t b, int k) {
  const uint64_t hi = kBytes01 * ((0xffu << k) & 0xffu);
  const uint64_t lo = kBytes01 * ((1u << k) - 1u);
  return ((b << k) & hi) | ((b >> (8 - k)) & lo);
}

SC_HOST_DEVICE uint64_t sub_bytes8(uint64_t x) {
  const uint64_t b = gf_inv8(x);
  return b ^ rotl8(b, 1) ^ rotl8(b, 2) ^ rotl8(b, 3) ^ rotl8(b, 4) ^ (kBytes01 * 0x63);
}

SC_HOST_DEVICE uint64_t inv_sub_bytes8(uint64_t s) {
  return gf_inv8(rotl8(s, 1) ^ rotl8(s, 3) ^ rotl8(s, 6) ^ (kBytes01 * 0x05));
}

SC_HOST_DEVICE uint8_t byte_at(const State& s, int b) {
  return static_cast<uint8_t>(s.w[b >> 3] >> (8 * (b & 7)));
}

// Row r of column c moves to column c - r (ShiftRows); `inverse` moves it to c + r.
SC_HOST_DEVICE State shift_rows(const State& s, bool inverse) {
  State out{{0, 0}};
  for (int c = 0; c < 4; ++c) {
    for (int r = 0; r < 4; ++r) {
      const int from_col = inverse ? (c + 4 - r) & 3 : (c + r) & 3;
      const uint64_t v = byte_at(s, 4 * from_col + r);
      const int to = 4 * c + r;
      out.w[to >> 3] |= v << (8 * (to & 7));
    }
  }
  return out;
}

// Rotates each 32-bit column so that row r holds what row r+k held (k bytes).
SC_HOST_DEVICE uint64_t rot_columns(uint64_t a, int k) {
  const int s = 8 * k;
  const uint64_t lo_mask = 0x00000000ffffffffull >> s;
  const uint64_t keep = lo_mask | (lo_mask << 32);
  return ((a >> s) & keep) | ((a << (32 - s)) & ~keep);
}

// b_r = 2 a_r + 3 a_{r+1} + a_{r+2} + a_{r+3}, two columns per word.
SC_HOST_DEVICE uint64_t mix_columns8(uint64_t a) {
  const uint64_t r1 = rot_columns(a, 1);
  const uint64_t r2 = rot_columns(a, 2);
  const uint64_t r3 = rot_columns(a, 3);
  return xtime8(a ^ r1) ^ r1 ^ r2 ^ r3;
}

// InvMixColumns = MixColumns after adding 4(a_r + a_{r+2}) to every row.
SC_HOST_DEVICE uint64_t inv_mix_columns8(uint64_t a) {
  const uint64_t u = xtime8(xtime8(a ^ rot_columns(a, 2)));
  return mix_columns8(a ^ u);
}

SC_HOST_DEVICE State load(const uint8_t* p) {
  State s{{0, 0}};
  for (int b = 0; b < 16; ++b) s.w[b >> 3] |= uint64_t{p[b]} << (8 * (b & 7));
  return s;
}

SC_HOST_DEVICE void store(const State& s, uint8_t* p) {
  for (int b = 0; b < 16; ++b) p[b] = byte_at(s, b);
}

SC_HOST_DEVICE State xor_state(const State& a, const State& b) {
  return State{{a.w[0] ^ b.w[0], a.w[1] ^ b.w[1]}};
}

// One full encryption round (AESENC semantics): SubBytes, ShiftRows, MixColumns, AddRoundKey.
SC_HOST_DEVICE State enc_round(State s, const State& rk) {
  s.w[0] = sub_bytes8(s.w[0]);
  s.w[1] = sub_bytes8(s.w[1]);
  s = shift_rows(s, false);
  s.w[0] = mix_columns8(s.w[0]);
  s.w[1] = mix_columns8(s.w[1]);
  return xor_state(s, rk);
}

// The last encryption round (AESENCLAST): no MixColumns.
SC_HOST_DEVICE State enc_last_round(State s, const State& rk) {
  s.w[0] = sub_bytes8(s.w[0]);
  s.w[1] = sub_bytes8(s.w[1]);
  return xor_state(shift_rows(s, false), rk);
}

// One decryption round of the equivalent inverse cipher (AESDEC semantics): the round
// key must already have InvMixColumns applied (see the decryption schedule).
SC_HOST_DEVICE State dec_round(State s, const State& rk) {
  s = shift_rows(s, true);
  s.w[0] = inv_mix_columns8(inv_sub_bytes8(s.w[0]));
  s.w[1] = inv_mix_columns8(inv_sub_bytes8(s.w[1]));
  return xor_state(s, rk);
}

// The last decryption round (AESDECLAST).
SC_HOST_DEVICE State dec_last_round(State s, const State& rk) {
  s = shift_rows(s, true);
  s.w[0] = inv_sub_bytes8(s.w[0]);
  s.w[1] = inv_sub_bytes8(s.w[1]);
  return xor_state(s, rk);
}

}  // namespace sectorcrypt::aes_ct
