// Bitsliced constant-time AES on 32 blocks per thread, host/device (SC_HOST_DEVICE): the
// GPU's `bitsliced32` variant. Only AND, XOR, NOT and shifts on 32-bit words; no table, no
// data-dependent address or branch.
//
// Layout (after Hajihassani et al., IEEE TPDS 2019): a Slice is 128 words, one per bit of
// the AES state; word 8 i + k holds bit k of state byte i (FIPS-197 order, byte i = row
// i % 4 of column i / 4) of all 32 blocks, block j in bit j. So ShiftRows is only a choice
// of which words MixColumns reads (free), MixColumns is XORs of whole words, and the S-box
// is a logic circuit applied to 8 words at a time: 16 circuits a round serve 32 blocks.
//
// Packing: with w[32 k + j] = word k (bytes 4k..4k+3, little-endian) of block j, a 32x32
// bit transpose of each quarter puts bit p of word k of block j into bit j of w[32 k + p],
// which is word 8 (4 k + p / 8) + p % 8: exactly the layout. The transpose is its own
// inverse, so unpacking is the same call.
//
// S-box: the depth-16 circuit of Boyar and Peralta ("A depth-16 circuit for the AES
// S-box", 2012; 128 gates, 34 of them AND), a linear layer, a nonlinear core computing the
// field inverse, a linear layer that includes the affine map; grouped into 87 LOP3s (any
// function of three words, one instruction) by scripts/gen_sbox_lop3.py, where ptxas's own
// fusing of the plain gates reaches 96. The inverse S-box reuses it: with A the affine
// map's linear part, S(x) = A(x^-1) + 0x63, so S^-1(y) = A^-1(S(A^-1(y) + 5)) + 5
// (A^-1(0x63) = 5), mapped as one circuit into 103 LOP3s.
#pragma once

#include <cstdint>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/portable.h"
#include "kernels/sector_format.h"
#include "kernels/xts_tweak.h"

// Loops over words are unrolled on the GPU so every index is a constant and the slice
// stays in registers (a run-time index would put it in local memory).
#if defined(__CUDA_ARCH__)
#define SC_BS32_UNROLL _Pragma("unroll")
#else
#define SC_BS32_UNROLL
#endif

namespace sectorcrypt::bitsliced32 {

inline constexpr int kBlocks = 32;   // blocks per thread: bit j of every word is block j
inline constexpr int kWords = 128;   // one word per state bit
inline constexpr int kMaxRounds = 14;

struct Slice {
  uint32_t w[kWords];
};

// ---- Packing ----

// Swaps a's bits (m << n) with b's bits m: element (row a, column p + n) <-> (row b, p).
SC_HOST_DEVICE void swap_block(uint32_t& a, uint32_t& b, uint32_t m, int n) {
  const uint32_t t = ((a >> n) ^ b) & m;
  b ^= t;
  a ^= t << n;
}

// PRMT: byte i of the result is byte (s >> 4 i) & 7 of y:x.
SC_HOST_DEVICE uint32_t byte_perm(uint32_t x, uint32_t y, uint32_t s) {
#if defined(__CUDA_ARCH__)
  return __byte_perm(x, y, s);
#else
  const uint64_t v = uint64_t{y} << 32 | x;
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) r |= static_cast<uint32_t>((v >> (8 * ((s >> (4 * i)) & 7))) & 0xff) << (8 * i);
  return r;
#endif
}

// swap_block for n = 16 and n = 8 moves whole bytes: two PRMTs instead of five operations.
SC_HOST_DEVICE void swap_halves(uint32_t& a, uint32_t& b) {
  const uint32_t x = byte_perm(a, b, 0x5410), y = byte_perm(a, b, 0x7632);
  a = x;
  b = y;
}

SC_HOST_DEVICE void swap_bytes(uint32_t& a, uint32_t& b) {
  const uint32_t x = byte_perm(a, b, 0x6240), y = byte_perm(a, b, 0x7351);
  a = x;
  b = y;
}

// Transposes the 32x32 bit matrix w[Base + row], bit column: afterwards bit j of
// w[Base + p] is what bit p of w[Base + j] was.
template <int Base>
SC_HOST_DEVICE void transpose32(uint32_t (&w)[kWords]) {
SC_BS32_UNROLL
  for (int k = 0; k < 16; ++k) swap_halves(w[Base + k], w[Base + k + 16]);
SC_BS32_UNROLL
  for (int k = 0; k < 32; ++k) {
    if ((k & 8) == 0) swap_bytes(w[Base + k], w[Base + k + 8]);
  }
  constexpr uint32_t kMasks[3] = {0x0f0f0f0fu, 0x33333333u, 0x55555555u};
SC_BS32_UNROLL
  for (int stage = 0; stage < 3; ++stage) {
    const int n = 4 >> stage;
SC_BS32_UNROLL
    for (int k = 0; k < 32; ++k) {
      if ((k & n) == 0) swap_block(w[Base + k], w[Base + k + n], kMasks[stage], n);
    }
  }
}

// Blocks <-> bit slices; see the layout above. Its own inverse.
SC_HOST_DEVICE void transpose(Slice& s) {
  transpose32<0>(s.w);
  transpose32<32>(s.w);
  transpose32<64>(s.w);
  transpose32<96>(s.w);
}

// Round-key slices from one round key per block (column): the same transpose.
SC_HOST_DEVICE void key_slices_from_columns(const cuda_core::Block (&rk)[kBlocks],
                                            uint32_t (&out)[kWords]) {
  Slice s;
SC_BS32_UNROLL
  for (int j = 0; j < kBlocks; ++j) {
SC_BS32_UNROLL
    for (int k = 0; k < 4; ++k) s.w[32 * k + j] = rk[j].w[k];
  }
  transpose(s);
SC_BS32_UNROLL
  for (int i = 0; i < kWords; ++i) out[i] = s.w[i];
}

// Word `i` of the round-key slices when all 32 blocks use round key `rk`: all ones or
// all zeros, by bit i % 32 of word i / 32.
SC_HOST_DEVICE uint32_t uniform_key_word(const cuda_core::Block& rk, int i) {
  return 0u - ((rk.w[i / 32] >> (i % 32)) & 1u);
}

// ---- S-box circuits (8 words, bit 0 = least significant) ----

// Any function of three words as one LOP3 instruction: bit i of Lut is the result for
// inputs (a, b, c) = bits (2, 1, 0) of i, as PTX's lop3.b32 defines it.
template <uint32_t Lut>
SC_HOST_DEVICE uint32_t lop3(uint32_t a, uint32_t b, uint32_t c) {
#if defined(__CUDA_ARCH__)
  uint32_t d;
  asm("lop3.b32 %0, %1, %2, %3, %4;" : "=r"(d) : "r"(a), "r"(b), "r"(c), "n"(Lut));
  return d;
#else
  uint32_t r = 0;
  for (int i = 0; i < 8; ++i) {
    if ((Lut >> i) & 1) r |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) & ((i & 1) ? c : ~c);
  }
  return r;
#endif
}

// Boyar-Peralta forward S-box in place, as generated by scripts/gen_sbox_lop3.py (the gate
// names are the paper's). U0 is the most significant input bit, as in the paper.
SC_HOST_DEVICE void sbox(uint32_t& b0, uint32_t& b1, uint32_t& b2, uint32_t& b3,
                         uint32_t& b4, uint32_t& b5, uint32_t& b6, uint32_t& b7) {
  const uint32_t U0 = b7, U1 = b6, U2 = b5, U3 = b4, U4 = b3, U5 = b2, U6 = b1, U7 = b0;
  const uint32_t T1 = lop3<0x3c>(U0, U3, 0u);
  const uint32_t T2 = lop3<0x3c>(U0, U5, 0u);
  const uint32_t T3 = lop3<0x3c>(U0, U6, 0u);
  const uint32_t T4 = lop3<0x3c>(U3, U5, 0u);
  const uint32_t T5 = lop3<0x3c>(U4, U6, 0u);
  const uint32_t T6 = lop3<0x3c>(T1, T5, 0u);
  const uint32_t T7 = lop3<0x3c>(U1, U2, 0u);
  const uint32_t T8 = lop3<0x96>(T1, T5, U7);
  const uint32_t T10 = lop3<0x96>(T1, T5, T7);
  const uint32_t T11 = lop3<0x3c>(U1, U5, 0u);
  const uint32_t T13 = lop3<0x3c>(T3, T4, 0u);
  const uint32_t T16 = lop3<0x96>(T5, U2, U5);
  const uint32_t T17 = lop3<0x96>(T7, T16, U7);
  const uint32_t T19 = lop3<0x96>(T7, U3, U7);
  const uint32_t T20 = lop3<0x3c>(T1, T19, 0u);
  const uint32_t T22 = lop3<0x96>(T7, U6, U7);
  const uint32_t T25 = lop3<0x96>(T1, T17, T19);
  const uint32_t T27 = lop3<0x96>(T1, U2, U5);
  const uint32_t M1 = lop3<0x28>(T1, T5, T13);
  const uint32_t M2 = lop3<0x48>(T2, T8, T22);
  const uint32_t M3 = lop3<0x96>(M1, T6, T11);
  const uint32_t M5 = lop3<0x78>(M1, T19, U7);
  const uint32_t M6 = lop3<0xc0>(T3, T16, 0u);
  const uint32_t M7 = lop3<0x48>(T7, T22, U7);
  const uint32_t M10 = lop3<0x78>(M6, T17, T20);
  const uint32_t M11 = lop3<0x60>(T1, T5, T11);
  const uint32_t M13 = lop3<0x78>(M11, T4, T27);
  const uint32_t M15 = lop3<0x78>(M11, T2, T10);
  const uint32_t M17 = lop3<0x96>(M5, T2, T10);
  const uint32_t M18 = lop3<0x1e>(M7, T3, T16);
  const uint32_t M20 = lop3<0x96>(M2, M3, M13);
  const uint32_t M21 = lop3<0x3c>(M15, M17, 0u);
  const uint32_t M23 = lop3<0x96>(M10, M15, T25);
  const uint32_t M24 = lop3<0x96>(M13, M18, M23);
  const uint32_t M25 = lop3<0x28>(M13, M18, M20);
  const uint32_t M26 = lop3<0x96>(M15, M17, M25);
  const uint32_t M27 = lop3<0x96>(M15, M17, M20);
  const uint32_t M29 = lop3<0x28>(M23, M25, M27);
  const uint32_t M31 = lop3<0xc0>(M20, M23, 0u);
  const uint32_t M34 = lop3<0x28>(M13, M18, M21);
  const uint32_t M37 = lop3<0x96>(M15, M17, M29);
  const uint32_t M38 = lop3<0xb4>(M25, M27, M31);
  const uint32_t M39 = lop3<0x78>(M23, M24, M26);
  const uint32_t M40 = lop3<0x9c>(M24, M25, M34);
  const uint32_t M41 = lop3<0x3c>(M38, M40, 0u);
  const uint32_t M42 = lop3<0x96>(M21, M29, M39);
  const uint32_t M43 = lop3<0x96>(M21, M29, M38);
  const uint32_t M46 = lop3<0x28>(M39, M40, T6);
  const uint32_t M48 = lop3<0xc0>(M39, U7, 0u);
  const uint32_t M50 = lop3<0x60>(M38, T7, U7);
  const uint32_t M51 = lop3<0x28>(M21, M29, T17);
  const uint32_t M52 = lop3<0x60>(M42, T5, T11);
  const uint32_t M53 = lop3<0x28>(M41, M42, T27);
  const uint32_t M55 = lop3<0x28>(M39, M40, T13);
  const uint32_t M56 = lop3<0x60>(M40, T2, T22);
  const uint32_t M57 = lop3<0xc0>(M39, T19, 0u);
  const uint32_t M58 = lop3<0x28>(M37, M38, T3);
  const uint32_t M61 = lop3<0x28>(M37, M39, T1);
  const uint32_t M62 = lop3<0x28>(M41, M42, T4);
  const uint32_t L0 = lop3<0x6c>(M42, M62, T1);
  const uint32_t L1 = lop3<0x3c>(M50, M56, 0u);
  const uint32_t L2 = lop3<0x6c>(M39, M46, U7);
  const uint32_t L3 = lop3<0x6c>(M40, M55, T8);
  const uint32_t L4 = lop3<0x6c>(M41, M58, T10);
  const uint32_t L5 = lop3<0x6c>(M43, M61, T16);
  const uint32_t L6 = lop3<0x3c>(L5, M62, 0u);
  const uint32_t L7 = lop3<0x3c>(L3, M46, 0u);
  const uint32_t L8 = lop3<0x6c>(M38, M51, T22);
  const uint32_t L9 = lop3<0x3c>(M52, M53, 0u);
  const uint32_t L10 = lop3<0x3c>(L4, M53, 0u);
  const uint32_t L11 = lop3<0x78>(L2, M37, T20);
  const uint32_t L15 = lop3<0x3c>(L1, M55, 0u);
  const uint32_t L18 = lop3<0x78>(L8, M43, T3);
  const uint32_t L19 = lop3<0x78>(L4, M41, T2);
  const uint32_t L22 = lop3<0x96>(L3, M48, M51);
  const uint32_t L26 = lop3<0x96>(L3, L9, M46);
  const uint32_t L27 = lop3<0x3c>(L8, L10, 0u);
  const uint32_t L28 = lop3<0x96>(L11, M52, M61);
  const uint32_t L29 = lop3<0x96>(L1, L11, M57);
  b7 = lop3<0x96>(L6, L9, L15);
  b6 = lop3<0x69>(L0, L26, M56);
  b5 = lop3<0xc3>(L19, L28, 0u);
  b4 = lop3<0x96>(L1, L6, L7);
  b3 = lop3<0x96>(L0, L1, L22);
  b2 = lop3<0x96>(L6, L10, L29);
  b1 = lop3<0x69>(L0, L27, M50);
  b0 = lop3<0x69>(L2, L6, L18);
}

// Inverse S-box in place, S^-1(y) = A^-1(S(A^-1(y) + 5)) + 5 mapped as one circuit by
// scripts/gen_sbox_lop3.py --inverse: Y is the input bit, A the circuit's input after A^-1
// and + 5, B its output before them again.
SC_HOST_DEVICE void inv_sbox(uint32_t& b0, uint32_t& b1, uint32_t& b2, uint32_t& b3,
                             uint32_t& b4, uint32_t& b5, uint32_t& b6, uint32_t& b7) {
  const uint32_t Y0 = b0, Y1 = b1, Y2 = b2, Y3 = b3, Y4 = b4, Y5 = b5, Y6 = b6, Y7 = b7;
  const uint32_t A0 = lop3<0x69>(Y2, Y5, Y7);
  const uint32_t A1 = lop3<0x96>(Y0, Y3, Y6);
  const uint32_t A2 = lop3<0x69>(Y1, Y4, Y7);
  const uint32_t A3 = lop3<0x96>(Y0, Y2, Y5);
  const uint32_t A4 = lop3<0x96>(Y1, Y3, Y6);
  const uint32_t A5 = lop3<0x96>(Y2, Y4, Y7);
  const uint32_t A6 = lop3<0x96>(Y0, Y3, Y5);
  const uint32_t A7 = lop3<0x96>(Y1, Y4, Y6);
  const uint32_t T1 = lop3<0x3c>(A4, A7, 0u);
  const uint32_t T2 = lop3<0x3c>(A2, A7, 0u);
  const uint32_t T3 = lop3<0x3c>(A1, A7, 0u);
  const uint32_t T4 = lop3<0x3c>(A2, A4, 0u);
  const uint32_t T5 = lop3<0x3c>(A1, A3, 0u);
  const uint32_t T6 = lop3<0x96>(A1, A3, T1);
  const uint32_t T7 = lop3<0x3c>(A5, A6, 0u);
  const uint32_t T8 = lop3<0x96>(A0, T1, T5);
  const uint32_t T10 = lop3<0x96>(A5, A6, T6);
  const uint32_t T11 = lop3<0x3c>(A2, A6, 0u);
  const uint32_t T13 = lop3<0x96>(A1, A7, T4);
  const uint32_t T15 = lop3<0x96>(A1, A3, T11);
  const uint32_t T16 = lop3<0x96>(A2, A5, T5);
  const uint32_t T17 = lop3<0x96>(A0, T7, T16);
  const uint32_t T19 = lop3<0x96>(A0, A4, T7);
  const uint32_t T20 = lop3<0x96>(A4, A7, T19);
  const uint32_t T22 = lop3<0x96>(A0, A1, T7);
  const uint32_t T23 = lop3<0x96>(A2, A7, T22);
  const uint32_t T25 = lop3<0x96>(T1, T17, T19);
  const uint32_t T27 = lop3<0x96>(A2, A5, T1);
  const uint32_t M1 = lop3<0x28>(T1, T5, T13);
  const uint32_t M3 = lop3<0x96>(M1, T6, T11);
  const uint32_t M5 = lop3<0x6c>(A0, M1, T19);
  const uint32_t M6 = lop3<0x28>(A1, A7, T16);
  const uint32_t M7 = lop3<0x12>(A0, A1, T7);
  const uint32_t M10 = lop3<0x78>(M6, T17, T20);
  const uint32_t M11 = lop3<0x28>(A4, A7, T15);
  const uint32_t M13 = lop3<0x78>(M11, T4, T27);
  const uint32_t M15 = lop3<0x78>(M11, T2, T10);
  const uint32_t M16 = lop3<0x78>(M3, T8, T23);
  const uint32_t M17 = lop3<0x96>(M5, T2, T10);
  const uint32_t M18 = lop3<0x1e>(M7, T3, T16);
  const uint32_t M21 = lop3<0x3c>(M15, M17, 0u);
  const uint32_t M23 = lop3<0x96>(M10, M15, T25);
  const uint32_t M24 = lop3<0x96>(M13, M18, M23);
  const uint32_t M25 = lop3<0x18>(M13, M16, M18);
  const uint32_t M26 = lop3<0x96>(M15, M17, M25);
  const uint32_t M27 = lop3<0x96>(M13, M16, M21);
  const uint32_t M29 = lop3<0x28>(M23, M25, M27);
  const uint32_t M31 = lop3<0x28>(M13, M16, M23);
  const uint32_t M34 = lop3<0x28>(M13, M18, M21);
  const uint32_t M37 = lop3<0x96>(M15, M17, M29);
  const uint32_t M38 = lop3<0xb4>(M25, M27, M31);
  const uint32_t M39 = lop3<0x78>(M23, M24, M26);
  const uint32_t M40 = lop3<0x9c>(M24, M25, M34);
  const uint32_t M41 = lop3<0x3c>(M38, M40, 0u);
  const uint32_t M42 = lop3<0x96>(M21, M29, M39);
  const uint32_t M43 = lop3<0x96>(M21, M29, M38);
  const uint32_t M46 = lop3<0x28>(M39, M40, T6);
  const uint32_t M48 = lop3<0xc0>(A0, M39, 0u);
  const uint32_t M50 = lop3<0x48>(A0, M38, T7);
  const uint32_t M51 = lop3<0x28>(M21, M29, T17);
  const uint32_t M53 = lop3<0x28>(M41, M42, T27);
  const uint32_t M55 = lop3<0x28>(M39, M40, T13);
  const uint32_t M56 = lop3<0x60>(M40, T2, T22);
  const uint32_t M57 = lop3<0xc0>(M39, T19, 0u);
  const uint32_t M58 = lop3<0x28>(A1, A7, M43);
  const uint32_t M61 = lop3<0x28>(A4, A7, M42);
  const uint32_t M62 = lop3<0x28>(M41, M42, T4);
  const uint32_t L0 = lop3<0x6c>(M42, M62, T1);
  const uint32_t L1 = lop3<0x6c>(M40, M50, T23);
  const uint32_t L2 = lop3<0x6a>(A0, M39, M46);
  const uint32_t L3 = lop3<0x6c>(M40, M55, T8);
  const uint32_t L4 = lop3<0x6c>(M41, M58, T10);
  const uint32_t L5 = lop3<0x6c>(M43, M61, T16);
  const uint32_t L6 = lop3<0x3c>(L5, M62, 0u);
  const uint32_t L7 = lop3<0x3c>(L3, M46, 0u);
  const uint32_t L8 = lop3<0x6c>(M38, M51, T22);
  const uint32_t L9 = lop3<0x6c>(M42, M53, T15);
  const uint32_t L10 = lop3<0x3c>(L4, M53, 0u);
  const uint32_t L11 = lop3<0x78>(L2, M37, T20);
  const uint32_t L14 = lop3<0x6c>(M42, M61, T15);
  const uint32_t L15 = lop3<0x3c>(L1, M55, 0u);
  const uint32_t L18 = lop3<0x78>(L8, M43, T3);
  const uint32_t L19 = lop3<0x78>(L4, M41, T2);
  const uint32_t L22 = lop3<0x96>(L3, M48, M51);
  const uint32_t L26 = lop3<0x96>(L3, L9, M46);
  const uint32_t L27 = lop3<0x3c>(L8, L10, 0u);
  const uint32_t L29 = lop3<0x96>(L1, L11, M57);
  const uint32_t B7 = lop3<0x96>(L6, L9, L15);
  const uint32_t B6 = lop3<0x69>(L0, L26, M56);
  const uint32_t B5 = lop3<0x69>(L11, L14, L19);
  const uint32_t B4 = lop3<0x96>(L1, L6, L7);
  const uint32_t B3 = lop3<0x96>(L0, L1, L22);
  const uint32_t B2 = lop3<0x96>(L6, L10, L29);
  const uint32_t B1 = lop3<0x69>(L0, L27, M50);
  const uint32_t B0 = lop3<0x69>(L2, L6, L18);
  b0 = lop3<0x69>(B2, B5, B7);
  b1 = lop3<0x96>(B0, B3, B6);
  b2 = lop3<0x69>(B1, B4, B7);
  b3 = lop3<0x96>(B0, B2, B5);
  b4 = lop3<0x96>(B1, B3, B6);
  b5 = lop3<0x96>(B2, B4, B7);
  b6 = lop3<0x96>(B0, B3, B5);
  b7 = lop3<0x96>(B1, B4, B6);
}

template <int Byte>
SC_HOST_DEVICE void sub_byte(uint32_t (&w)[kWords]) {
  constexpr int o = 8 * Byte;
  sbox(w[o], w[o + 1], w[o + 2], w[o + 3], w[o + 4], w[o + 5], w[o + 6], w[o + 7]);
}

template <int Byte>
SC_HOST_DEVICE void inv_sub_byte(uint32_t (&w)[kWords]) {
  constexpr int o = 8 * Byte;
  inv_sbox(w[o], w[o + 1], w[o + 2], w[o + 3], w[o + 4], w[o + 5], w[o + 6], w[o + 7]);
}

template <int Byte = 0>
SC_HOST_DEVICE void sub_bytes(Slice& s) {
  if constexpr (Byte < 16) {
    sub_byte<Byte>(s.w);
    sub_bytes<Byte + 1>(s);
  }
}

template <int Byte = 0>
SC_HOST_DEVICE void inv_sub_bytes(Slice& s) {
  if constexpr (Byte < 16) {
    inv_sub_byte<Byte>(s.w);
    inv_sub_bytes<Byte + 1>(s);
  }
}

// ---- Linear layers ----

// Multiplication by x in GF(2^8) on bit planes: bit 7 folds into bits 0, 1, 3, 4.
SC_HOST_DEVICE void xtime(const uint32_t (&a)[8], uint32_t (&out)[8]) {
  out[0] = a[7];
  out[1] = a[0] ^ a[7];
  out[2] = a[1];
  out[3] = a[2] ^ a[7];
  out[4] = a[3] ^ a[7];
  out[5] = a[4];
  out[6] = a[5];
  out[7] = a[6];
}

// Where state byte (row r, column c) is read from after ShiftRows (Shift = +1) or
// InvShiftRows (Shift = -1): row r, column c + Shift r.
template <int Shift>
SC_HOST_DEVICE constexpr int shifted_byte(int r, int c) {
  return 4 * (((c + Shift * r) % 4 + 4) % 4) + r;
}

// One column of MixColumns: out_r = 2 a_r + 3 a_{r+1} + a_{r+2} + a_{r+3}
//                                 = x (a_r + a_{r+1}) + (a_0 + a_1 + a_2 + a_3) + a_r.
SC_HOST_DEVICE void mix_column(const uint32_t (&a)[4][8], uint32_t (&out)[4][8]) {
  uint32_t t[4][8], all[8];
SC_BS32_UNROLL
  for (int r = 0; r < 4; ++r) {
SC_BS32_UNROLL
    for (int k = 0; k < 8; ++k) t[r][k] = a[r][k] ^ a[(r + 1) % 4][k];
  }
SC_BS32_UNROLL
  for (int k = 0; k < 8; ++k) all[k] = t[0][k] ^ t[2][k];
SC_BS32_UNROLL
  for (int r = 0; r < 4; ++r) {
    uint32_t xt[8];
    xtime(t[r], xt);
SC_BS32_UNROLL
    for (int k = 0; k < 8; ++k) out[r][k] = xt[k] ^ all[k] ^ a[r][k];
  }
}

// InvMixColumns = MixColumns after adding x^2 (a_r + a_{r+2}) to every row.
SC_HOST_DEVICE void inv_mix_column(uint32_t (&a)[4][8], uint32_t (&out)[4][8]) {
SC_BS32_UNROLL
  for (int r = 0; r < 2; ++r) {
    uint32_t u[8], x2[8], x4[8];
SC_BS32_UNROLL
    for (int k = 0; k < 8; ++k) u[k] = a[r][k] ^ a[r + 2][k];
    xtime(u, x2);
    xtime(x2, x4);
SC_BS32_UNROLL
    for (int k = 0; k < 8; ++k) {
      a[r][k] ^= x4[k];
      a[r + 2][k] ^= x4[k];
    }
  }
  mix_column(a, out);
}

// (Inv)ShiftRows then (Inv)MixColumns, from s into a fresh slice (the shift is renaming).
template <Direction Dir>
SC_HOST_DEVICE void shift_mix(const Slice& s, Slice& out) {
  constexpr int shift = Dir == Direction::encrypt ? 1 : -1;
SC_BS32_UNROLL
  for (int c = 0; c < 4; ++c) {
    uint32_t a[4][8], m[4][8];
SC_BS32_UNROLL
    for (int r = 0; r < 4; ++r) {
SC_BS32_UNROLL
      for (int k = 0; k < 8; ++k) a[r][k] = s.w[8 * shifted_byte<shift>(r, c) + k];
    }
    if constexpr (Dir == Direction::encrypt) {
      mix_column(a, m);
    } else {
      inv_mix_column(a, m);
    }
SC_BS32_UNROLL
    for (int r = 0; r < 4; ++r) {
SC_BS32_UNROLL
      for (int k = 0; k < 8; ++k) out.w[8 * (4 * c + r) + k] = m[r][k];
    }
  }
}

template <Direction Dir>
SC_HOST_DEVICE void shift_only(const Slice& s, Slice& out) {
  constexpr int shift = Dir == Direction::encrypt ? 1 : -1;
SC_BS32_UNROLL
  for (int c = 0; c < 4; ++c) {
SC_BS32_UNROLL
    for (int r = 0; r < 4; ++r) {
SC_BS32_UNROLL
      for (int k = 0; k < 8; ++k) out.w[8 * (4 * c + r) + k] = s.w[8 * shifted_byte<shift>(r, c) + k];
    }
  }
}

// `keys.xor_round(r, s)` adds round key r's slices (kWords words) to s.
template <class Keys>
SC_HOST_DEVICE void add_round_key(Slice& s, const Keys& keys, int r) {
  keys.xor_round(r, s.w);
}

// AES on the 32 blocks of s, in the direction of the schedule `keys` holds (decryption:
// the equivalent inverse cipher with the AESDEC schedule, as the other variants use).
template <Direction Dir, class Keys>
SC_HOST_DEVICE void crypt(Slice& s, const Keys& keys, int rounds) {
  add_round_key(s, keys, 0);
#if defined(__CUDA_ARCH__)
#pragma unroll 1
#endif
  for (int r = 1; r < rounds; ++r) {
    if constexpr (Dir == Direction::encrypt) {
      sub_bytes(s);
    } else {
      inv_sub_bytes(s);
    }
    Slice m;
    shift_mix<Dir>(s, m);
    add_round_key(m, keys, r);
    s = m;
  }
  if constexpr (Dir == Direction::encrypt) {
    sub_bytes(s);
  } else {
    inv_sub_bytes(s);
  }
  Slice m;
  shift_only<Dir>(s, m);
  add_round_key(m, keys, rounds);
  s = m;
}

// Round-key slices in a plain array (the host's source; the kernel keeps them in shared
// memory and reads them as broadcasts).
struct ArrayKeys {
  const uint32_t (*slices)[kWords];
  SC_HOST_DEVICE void xor_round(int r, uint32_t (&w)[kWords]) const {
    for (int i = 0; i < kWords; ++i) w[i] ^= slices[r][i];
  }
};

// ---- The XTS step: which block of which sector each bit column holds ----
//
// A warp's group of `sectors` sectors of `blocks` blocks is cut into columns of 32 blocks:
// sector s, segment g covers its blocks 32 g .. 32 g + 31 (segments = ceil(blocks / 32)).
// Column c is sector c / segments, segment c % segments; a step takes 32 consecutive
// columns, bit column j of every lane being column base + j, and lane l holds block
// 32 g + l of it. One warp-wide load per column: 512 contiguous bytes.
struct StepGeometry {
  uint32_t base;      // first column of the step
  uint32_t segments;  // columns per sector
  uint32_t blocks;    // blocks per sector
  uint32_t columns;   // columns in the group (sectors * segments)
  uint32_t take;      // bit j: column base + j belongs to this pass (and exists)
};

// The high word of (hi:lo) << n, 0 <= n < 32 (SHF.L.W on the GPU).
SC_HOST_DEVICE uint32_t funnel_left(uint32_t lo, uint32_t hi, uint32_t n) {
#if defined(__CUDA_ARCH__)
  return __funnelshift_l(lo, hi, n);
#else
  return static_cast<uint32_t>(((uint64_t{hi} << 32 | lo) << n) >> 32);
#endif
}

// t * x^lane (0 <= lane < 32) on 32-bit words, without the branch mul_x_pow takes for a
// shift of 0 (lane 0 would diverge from the warp at every column): the 128-bit shift is
// four funnel shifts, the bits shifted out (o < 2^lane) fold back as o * 0x87.
SC_HOST_DEVICE xts::Tweak lane_tweak(const xts::Tweak& t, int lane) {
  const uint32_t n = static_cast<uint32_t>(lane);
  const uint32_t w0 = static_cast<uint32_t>(t.lo), w1 = static_cast<uint32_t>(t.lo >> 32);
  const uint32_t w2 = static_cast<uint32_t>(t.hi), w3 = static_cast<uint32_t>(t.hi >> 32);
  const uint32_t o = funnel_left(w3, 0, n);
  const uint32_t fold_lo = o ^ (o << 1) ^ (o << 2) ^ (o << 7);
  const uint32_t fold_hi = (o >> 31) ^ (o >> 30) ^ (o >> 25);
  const uint32_t v0 = funnel_left(0, w0, n) ^ fold_lo;
  const uint32_t v1 = funnel_left(w0, w1, n) ^ fold_hi;
  const uint32_t v2 = funnel_left(w1, w2, n);
  const uint32_t v3 = funnel_left(w2, w3, n);
  return xts::Tweak{uint64_t{v0} | uint64_t{v1} << 32, uint64_t{v2} | uint64_t{v3} << 32};
}

// The tweak of block 32 g + lane of a sector whose tweak is t.
SC_HOST_DEVICE xts::Tweak block_tweak(const xts::Tweak& t, int lane, uint32_t segment) {
  xts::Tweak r = lane_tweak(t, lane);
  for (uint32_t g = 0; g < segment; ++g) r = cuda_core::lane_next_tweak(r);
  return r;
}

// Walks the step's 32 columns in order, calling visit(j, sector, block, active, tweak)
// with the lane's block of column j and its tweak. `sector_tweak(sector)` gives a sector's
// tweak (a warp shuffle on the GPU: called by every lane for the same sector in turn).
template <class SectorTweak, class Visit>
SC_HOST_DEVICE void walk_step(const StepGeometry& g, int lane, const SectorTweak& sector_tweak,
                              const Visit& visit) {
  uint32_t sector = g.base / g.segments;
  uint32_t segment = g.base % g.segments;
  xts::Tweak t{0, 0};
SC_BS32_UNROLL
  for (int j = 0; j < kBlocks; ++j) {
    if (segment == 0) {
      t = lane_tweak(sector_tweak(sector), lane);
    } else if (j == 0) {
      t = block_tweak(sector_tweak(sector), lane, segment);
    } else {
      t = cuda_core::lane_next_tweak(t);
    }
    const uint32_t block = 32 * segment + static_cast<uint32_t>(lane);
    const bool active = ((g.take >> j) & 1u) != 0 && block < g.blocks;
    visit(j, sector, block, active, t);
    if (++segment == g.segments) {
      segment = 0;
      ++sector;
    }
  }
}

// Loads the lane's 32 blocks XORed with their tweaks and bitslices them. `load(sector,
// block)` returns a Block; inactive columns read as zero and are never loaded.
template <class SectorTweak, class Load>
SC_HOST_DEVICE void gather(Slice& s, const StepGeometry& g, int lane,
                           const SectorTweak& sector_tweak, const Load& load) {
  walk_step(g, lane, sector_tweak,
            [&](int j, uint32_t sector, uint32_t block, bool active, const xts::Tweak& t) {
              cuda_core::Block b{{0, 0, 0, 0}};
              if (active) b = cuda_core::xor_tweak(load(sector, block), t);
SC_BS32_UNROLL
              for (int k = 0; k < 4; ++k) s.w[32 * k + j] = b.w[k];
            });
  transpose(s);
}

// Un-bitslices s and stores the active blocks XORed with their tweaks.
template <class SectorTweak, class Store>
SC_HOST_DEVICE void scatter(Slice& s, const StepGeometry& g, int lane,
                            const SectorTweak& sector_tweak, const Store& store) {
  transpose(s);
  walk_step(g, lane, sector_tweak,
            [&](int j, uint32_t sector, uint32_t block, bool active, const xts::Tweak& t) {
              if (!active) return;
              const cuda_core::Block b{{s.w[j], s.w[32 + j], s.w[64 + j], s.w[96 + j]}};
              store(sector, block, cuda_core::xor_tweak(b, t));
            });
}

}  // namespace sectorcrypt::bitsliced32
