// Bitsliced constant-time AES on two blocks at once, host/device (SC_HOST_DEVICE): the GPU's
// constant-time variant. Only AND, XOR, NOT, shifts and rotations on 32-bit words; no
// table, no data-dependent address or branch.
//
// Layout: eight 32-bit planes; plane i holds bit i of all 32 state bytes of the two blocks
// (slots 0 and 1). Byte (row r, column c) of slot s sits at bit c + 4 s + 8 r: byte r of a
// plane is row r, each nibble a slot's four columns. So MixColumns' row rotation is a
// 32-bit rotation by 8, and ShiftRows rotates the nibbles of byte r by r -- which the
// rounds never do (fixslicing, see mix_columns_offset).
//
// The S-box computes the inverse in a tower field GF((2^4)^2) (GF(16) = GF(2)[z]/(z^4+z+1),
// GF(256) = GF(16)[y]/(y^2+y+lambda)): an 8x8 change of basis, three GF(16) products, one
// GF(16) inverse (its algebraic normal form), and the change back fused with the affine
// map. Every constant here (lambda, the basis matrices, the inverse's normal form) is
// computed by constexpr code from the field definitions, not typed in. About 190 gates per
// 32 S-boxes (a bitsliced x^254 would take ~700; the best published circuits ~115).
#pragma once

#include <cstdint>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/sector_format.h"
#include "kernels/portable.h"

namespace sectorcrypt::bitsliced {

// ---- Compile-time field arithmetic (plain integers) ----

SC_HOST_DEVICE constexpr uint32_t gf16_mul(uint32_t a, uint32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 4; ++i) {
    if ((b >> i) & 1) r ^= a << i;
  }
  for (int k = 6; k >= 4; --k) {
    if ((r >> k) & 1) r ^= 0x13u << (k - 4);  // z^4 = z + 1
  }
  return r;
}

SC_HOST_DEVICE constexpr uint32_t gf16_inv(uint32_t x) {
  uint32_t r = 1;
  for (int i = 0; i < 14; ++i) r = gf16_mul(r, x);  // x^14 = x^-1, 0 -> 0
  return x ? r : 0;
}

// lambda: the first constant that makes y^2 + y + lambda irreducible over GF(16).
SC_HOST_DEVICE constexpr uint32_t tower_lambda() {
  for (uint32_t l = 1; l < 16; ++l) {
    bool root = false;
    for (uint32_t y = 0; y < 16; ++y) root |= (gf16_mul(y, y) ^ y ^ l) == 0;
    if (!root) return l;
  }
  return 0;
}

inline constexpr uint32_t kLambda = tower_lambda();

// Tower element (h, l) = h y + l as h << 4 | l.
SC_HOST_DEVICE constexpr uint32_t tower_mul(uint32_t a, uint32_t b) {
  const uint32_t a1 = a >> 4, a0 = a & 15, b1 = b >> 4, b0 = b & 15;
  const uint32_t hh = gf16_mul(a1, b1);
  return (hh ^ gf16_mul(a1, b0) ^ gf16_mul(a0, b1)) << 4 | (gf16_mul(hh, kLambda) ^ gf16_mul(a0, b0));
}

SC_HOST_DEVICE constexpr uint32_t aes_mul(uint32_t a, uint32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 8; ++i) {
    if ((b >> i) & 1) r ^= a;
    a = ((a << 1) ^ ((a & 0x80) ? 0x11b : 0)) & 0xff;
  }
  return r;
}

// The tower image of the AES element x (x = 2 in the AES field, a root of its polynomial
// x^8 + x^4 + x^3 + x + 1): the first such root in the tower field.
SC_HOST_DEVICE constexpr uint32_t tower_beta() {
  for (uint32_t b = 2; b < 256; ++b) {
    uint32_t pw[9] = {1};
    for (int k = 1; k <= 8; ++k) pw[k] = tower_mul(pw[k - 1], b);
    if ((pw[8] ^ pw[4] ^ pw[3] ^ pw[1] ^ pw[0]) == 0) return b;
  }
  return 0;
}

// A linear map on bytes given by the images of the eight unit vectors, as rows: bit k of
// row j says whether input bit k feeds output bit j. Packed as row j in byte j.
struct Columns {
  uint32_t c[8];
};

SC_HOST_DEVICE constexpr uint64_t rows_of(const Columns& cols) {
  uint64_t rows = 0;
  for (int j = 0; j < 8; ++j) {
    for (int k = 0; k < 8; ++k) rows |= uint64_t{(cols.c[k] >> j) & 1} << (8 * j + k);
  }
  return rows;
}

SC_HOST_DEVICE constexpr uint32_t apply_columns(const Columns& cols, uint32_t x) {
  uint32_t r = 0;
  for (int k = 0; k < 8; ++k) {
    if ((x >> k) & 1) r ^= cols.c[k];
  }
  return r;
}

SC_HOST_DEVICE constexpr Columns to_tower_columns() {
  Columns m{};
  uint32_t p = 1;
  for (int k = 0; k < 8; ++k, p = tower_mul(p, tower_beta())) m.c[k] = p;
  return m;
}

SC_HOST_DEVICE constexpr Columns from_tower_columns() {
  const Columns to = to_tower_columns();
  Columns m{};
  for (uint32_t x = 0; x < 256; ++x) {
    const uint32_t t = apply_columns(to, x);
    for (int k = 0; k < 8; ++k) {
      if (t == (1u << k)) m.c[k] = x;
    }
  }
  return m;
}

SC_HOST_DEVICE constexpr uint32_t affine_linear(uint32_t b) {  // FIPS-197 (5.1), no 0x63
  uint32_t r = b;
  for (int k = 1; k <= 4; ++k) r ^= ((b << k) | (b >> (8 - k))) & 0xff;
  return r;
}

SC_HOST_DEVICE constexpr uint32_t inv_affine_linear(uint32_t s) {  // no 0x05
  const auto rotl = [](uint32_t v, int k) { return ((v << k) | (v >> (8 - k))) & 0xff; };
  return rotl(s, 1) ^ rotl(s, 3) ^ rotl(s, 6);
}

// Forward S-box output = affine(from_tower(inverse)) ^ 0x63.
SC_HOST_DEVICE constexpr Columns from_tower_affine_columns() {
  const Columns from = from_tower_columns();
  Columns m{};
  for (int k = 0; k < 8; ++k) m.c[k] = affine_linear(from.c[k]);
  return m;
}

// Inverse S-box input: to_tower(inv_affine(s) ^ 0x05) = to_tower(inv_affine(s)) ^ to_tower(5).
SC_HOST_DEVICE constexpr Columns inv_affine_to_tower_columns() {
  const Columns to = to_tower_columns();
  Columns m{};
  for (int k = 0; k < 8; ++k) m.c[k] = apply_columns(to, inv_affine_linear(1u << k));
  return m;
}

// d's linear part: lambda a1^2 + a0^2 for the tower element (a1, a0), 8 bits -> 4 bits.
SC_HOST_DEVICE constexpr Columns norm_linear_columns() {
  Columns m{};
  for (int k = 0; k < 8; ++k) {
    const uint32_t e = 1u << k;
    const uint32_t a1 = e >> 4, a0 = e & 15;
    m.c[k] = gf16_mul(gf16_mul(a1, a1), kLambda) ^ gf16_mul(a0, a0);
  }
  return m;
}

// Algebraic normal form of the GF(16) inverse: bit m of nibble j says whether the monomial
// prod_{i in m} x_i appears in output bit j (Moebius transform of the truth table).
SC_HOST_DEVICE constexpr uint64_t gf16_inv_anf() {
  uint64_t anf = 0;
  for (int j = 0; j < 4; ++j) {
    uint32_t f[16] = {};
    for (uint32_t x = 0; x < 16; ++x) f[x] = (gf16_inv(x) >> j) & 1;
    for (int i = 0; i < 4; ++i) {
      for (uint32_t x = 0; x < 16; ++x) {
        if ((x >> i) & 1) f[x] ^= f[x ^ (1u << i)];
      }
    }
    for (uint32_t m = 0; m < 16; ++m) anf |= uint64_t{f[m]} << (16 * j + m);
  }
  return anf;
}

inline constexpr uint64_t kToTowerRows = rows_of(to_tower_columns());
inline constexpr uint64_t kFromTowerAffineRows = rows_of(from_tower_affine_columns());
inline constexpr uint64_t kInvAffineToTowerRows = rows_of(inv_affine_to_tower_columns());
inline constexpr uint64_t kFromTowerRows = rows_of(from_tower_columns());
inline constexpr uint64_t kNormLinearRows = rows_of(norm_linear_columns());
inline constexpr uint32_t kInvSboxInputConstant = apply_columns(to_tower_columns(), 0x05);
inline constexpr uint64_t kGf16InvAnf = gf16_inv_anf();

// ---- Bitsliced building blocks (planes) ----

// out[j] = XOR of in[k] over the bits k of row j; Rows is a compile-time constant so the
// branches fold away and only the XORs remain.
template <uint64_t Rows, int Out>
SC_HOST_DEVICE void linear(const uint32_t in[8], uint32_t out[]) {
  for (int j = 0; j < Out; ++j) {
    uint32_t r = 0;
    for (int k = 0; k < 8; ++k) {
      if ((Rows >> (8 * j + k)) & 1) r ^= in[k];
    }
    out[j] = r;
  }
}

SC_HOST_DEVICE void gf16_mul_planes(const uint32_t a[4], const uint32_t b[4], uint32_t c[4]) {
  uint32_t p[7] = {0, 0, 0, 0, 0, 0, 0};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) p[i + j] ^= a[i] & b[j];
  }
  for (int k = 6; k >= 4; --k) {  // z^k = z^(k-3) + z^(k-4)
    p[k - 3] ^= p[k];
    p[k - 4] ^= p[k];
  }
  for (int i = 0; i < 4; ++i) c[i] = p[i];
}

SC_HOST_DEVICE void gf16_inv_planes(const uint32_t x[4], uint32_t out[4]) {
  uint32_t mono[16];
  mono[0] = ~0u;
  for (int m = 1; m < 16; ++m) {
    const int top = m >= 8 ? 3 : m >= 4 ? 2 : m >= 2 ? 1 : 0;
    mono[m] = (m == (1 << top)) ? x[top] : (mono[m ^ (1 << top)] & x[top]);
  }
  for (int j = 0; j < 4; ++j) {
    uint32_t r = 0;
    for (int m = 0; m < 16; ++m) {
      if ((kGf16InvAnf >> (16 * j + m)) & 1) r ^= mono[m];
    }
    out[j] = r;
  }
}

// The tower inverse of t (planes 0..3 = a0, 4..7 = a1):
// (a1 y + a0)^-1 = (a1 d^-1) y + (a0 + a1) d^-1 with d = lambda a1^2 + a1 a0 + a0^2.
SC_HOST_DEVICE void tower_inv_planes(const uint32_t t[8], uint32_t out[8]) {
  const uint32_t* a0 = t;
  const uint32_t* a1 = t + 4;
  uint32_t d[4], prod[4], dinv[4], sum[4];
  linear<kNormLinearRows, 4>(t, d);
  gf16_mul_planes(a1, a0, prod);
  for (int i = 0; i < 4; ++i) {
    d[i] ^= prod[i];
    sum[i] = a0[i] ^ a1[i];
  }
  gf16_inv_planes(d, dinv);
  gf16_mul_planes(sum, dinv, out);
  gf16_mul_planes(a1, dinv, out + 4);
}

struct State {
  uint32_t p[8];
};

SC_HOST_DEVICE void sub_bytes(State& s) {
  uint32_t t[8], inv[8];
  linear<kToTowerRows, 8>(s.p, t);
  tower_inv_planes(t, inv);
  linear<kFromTowerAffineRows, 8>(inv, s.p);
  for (int i = 0; i < 8; ++i) {
    if ((0x63 >> i) & 1) s.p[i] = ~s.p[i];
  }
}

SC_HOST_DEVICE void inv_sub_bytes(State& s) {
  uint32_t t[8], inv[8];
  linear<kInvAffineToTowerRows, 8>(s.p, t);
  for (int i = 0; i < 8; ++i) {
    if ((kInvSboxInputConstant >> i) & 1) t[i] = ~t[i];
  }
  tower_inv_planes(t, inv);
  linear<kFromTowerRows, 8>(inv, s.p);
}

// Rotates every nibble right by N (taken mod 4): bit c of a nibble takes bit c + N.
template <int N>
SC_HOST_DEVICE uint32_t nibble_rotr(uint32_t x) {
  constexpr int n = N & 3;
  if constexpr (n == 0) {
    return x;
  } else {
    constexpr uint32_t lo = 0x11111111u * ((1u << (4 - n)) - 1u);
    return ((x >> n) & lo) | ((x << (4 - n)) & ~lo);
  }
}

// ShiftRows to the power M (M < 0: InvShiftRows) on a plane: byte r is row r, and row r's
// column c takes column c + M r, so its nibbles rotate right by M r.
template <int M>
SC_HOST_DEVICE uint32_t shift_rows_pow(uint32_t x) {
  return (x & 0x000000ffu) | (nibble_rotr<M>(x) & 0x0000ff00u) |
         (nibble_rotr<2 * M>(x) & 0x00ff0000u) | (nibble_rotr<3 * M>(x) & 0xff000000u);
}

SC_HOST_DEVICE void shift_rows_pow(State& s, int m) {
  for (int i = 0; i < 8; ++i) {
    switch (m & 3) {
      case 1: s.p[i] = shift_rows_pow<1>(s.p[i]); break;
      case 2: s.p[i] = shift_rows_pow<2>(s.p[i]); break;
      case 3: s.p[i] = shift_rows_pow<3>(s.p[i]); break;
      default: break;
    }
  }
}

// Byte r of the result holds row r + k of the input.
SC_HOST_DEVICE uint32_t rotate_rows(uint32_t x, int k) {
  return (x >> (8 * k)) | (x << (32 - 8 * k));
}

// Multiplication by x in GF(2^8) across planes: bit 7 folds into bits 0, 1, 3, 4.
SC_HOST_DEVICE void xtime_planes(const uint32_t a[8], uint32_t out[8]) {
  out[0] = a[7];
  out[1] = a[0] ^ a[7];
  out[2] = a[1];
  out[3] = a[2] ^ a[7];
  out[4] = a[3] ^ a[7];
  out[5] = a[4];
  out[6] = a[5];
  out[7] = a[6];
}

// ShiftRows is never computed in the rounds ("fixslicing", after Adomnicai and Peyrin):
// after k rounds the state is kept as SR^-k of the real one (SR^+k when decrypting), so
// in the real MixColumns input of round j = k + 1, row r + 1 of a column sits J = j
// (decrypting: -j) columns further on than row r. MixColumns then only needs nibble
// rotations by J and 2J, free when those are 0 mod 4, instead of a full ShiftRows every
// round; the round keys are stored shifted to match (fixslice_key) and one ShiftRows power
// after the last round restores the real layout.
//
// b = 2 a_r + 3 a_{r+1} + a_{r+2} + a_{r+3} = 2 t + a_{r+1} + t_{r+2}, t = a + a_{r+1}.
template <int J>
SC_HOST_DEVICE void mix_columns_offset(State& s) {
  uint32_t a1[8], t[8], xt[8];
  for (int i = 0; i < 8; ++i) {
    a1[i] = nibble_rotr<J>(rotate_rows(s.p[i], 1));
    t[i] = s.p[i] ^ a1[i];
  }
  xtime_planes(t, xt);
  for (int i = 0; i < 8; ++i) s.p[i] = xt[i] ^ a1[i] ^ nibble_rotr<2 * J>(rotate_rows(t[i], 2));
}

// InvMixColumns = MixColumns after adding 4 (a_r + a_{r+2}) to every row.
template <int J>
SC_HOST_DEVICE void inv_mix_columns_offset(State& s) {
  uint32_t u[8], x2[8], x4[8];
  for (int i = 0; i < 8; ++i) u[i] = s.p[i] ^ nibble_rotr<2 * J>(rotate_rows(s.p[i], 2));
  xtime_planes(u, x2);
  xtime_planes(x2, x4);
  for (int i = 0; i < 8; ++i) s.p[i] ^= x4[i];
  mix_columns_offset<J>(s);
}

// Round key r as the fixsliced rounds consume it.
template <Direction Dir>
SC_HOST_DEVICE State fixslice_key(State k, int r) {
  shift_rows_pow(k, Dir == Direction::encrypt ? -r : r);
  return k;
}

SC_HOST_DEVICE void add_round_key(State& s, const State& k) {
  for (int i = 0; i < 8; ++i) s.p[i] ^= k.p[i];
}

// ---- Packing: eight column words <-> eight planes ----

// t = ((a >> n) ^ b) & m; b ^= t; a ^= t << n: swaps b's bits m with a's bits m << n.
SC_HOST_DEVICE void swap_move(uint32_t& a, uint32_t& b, uint32_t m, int n) {
  const uint32_t t = ((a >> n) ^ b) & m;
  b ^= t;
  a ^= t << n;
}

// Transposes, per byte position r, the 8x8 bit matrix (word k, bit i) <-> (plane i,
// bit k). Its own inverse. Words 0..3 are slot 0's columns, 4..7 slot 1's.
SC_HOST_DEVICE void transpose(uint32_t x[8]) {
  for (int k = 0; k < 8; k += 2) swap_move(x[k], x[k + 1], 0x55555555u, 1);
  swap_move(x[0], x[2], 0x33333333u, 2);
  swap_move(x[1], x[3], 0x33333333u, 2);
  swap_move(x[4], x[6], 0x33333333u, 2);
  swap_move(x[5], x[7], 0x33333333u, 2);
  for (int k = 0; k < 4; ++k) swap_move(x[k], x[k + 4], 0x0f0f0f0fu, 4);
}

SC_HOST_DEVICE State pack(const cuda_core::Block& a, const cuda_core::Block& b) {
  State s{{a.w[0], a.w[1], a.w[2], a.w[3], b.w[0], b.w[1], b.w[2], b.w[3]}};
  transpose(s.p);
  return s;
}

SC_HOST_DEVICE void unpack(State s, cuda_core::Block* a, cuda_core::Block* b) {
  transpose(s.p);
  *a = cuda_core::Block{{s.p[0], s.p[1], s.p[2], s.p[3]}};
  *b = cuda_core::Block{{s.p[4], s.p[5], s.p[6], s.p[7]}};
}

// ---- Whole blocks ----

// `keys.planes(r)` gives round key r of both slots, packed and fixsliced:
// fixslice_key<Dir>(pack(rk_slot0, rk_slot1), r).
template <class KeyPlanes>
SC_HOST_DEVICE State encrypt(State s, const KeyPlanes& keys, int rounds) {
  add_round_key(s, keys.planes(0));
#if defined(__CUDA_ARCH__)
#pragma unroll 1
#endif
  for (int r = 1; r < rounds; ++r) {
    sub_bytes(s);
    switch (r & 3) {  // uniform across a warp
      case 0: mix_columns_offset<0>(s); break;
      case 1: mix_columns_offset<1>(s); break;
      case 2: mix_columns_offset<2>(s); break;
      default: mix_columns_offset<3>(s); break;
    }
    add_round_key(s, keys.planes(r));
  }
  sub_bytes(s);
  add_round_key(s, keys.planes(rounds));
  shift_rows_pow(s, rounds);
  return s;
}

// The equivalent inverse cipher (AESDEC order) with the decryption schedule.
template <class KeyPlanes>
SC_HOST_DEVICE State decrypt(State s, const KeyPlanes& keys, int rounds) {
  add_round_key(s, keys.planes(0));
#if defined(__CUDA_ARCH__)
#pragma unroll 1
#endif
  for (int r = 1; r < rounds; ++r) {
    inv_sub_bytes(s);
    switch (r & 3) {
      case 0: inv_mix_columns_offset<0>(s); break;
      case 1: inv_mix_columns_offset<-1>(s); break;
      case 2: inv_mix_columns_offset<-2>(s); break;
      default: inv_mix_columns_offset<-3>(s); break;
    }
    add_round_key(s, keys.planes(r));
  }
  inv_sub_bytes(s);
  add_round_key(s, keys.planes(rounds));
  shift_rows_pow(s, -rounds);
  return s;
}

// Round key planes packed on the fly from two byte schedules (slot 0's, slot 1's; the
// same one twice for a single block). The kernel's data phase packs them once per sector
// pair into shared memory instead (xts_ct.cu), with these same calls.
template <Direction Dir, class Keys>
struct PackedKeys {
  Keys slot0;
  Keys slot1;
  SC_HOST_DEVICE State planes(int r) const {
    return fixslice_key<Dir>(pack(slot0.round(r), slot1.round(r)), r);
  }
};

// XTS's block cipher on two blocks: AES in `dir` over both slots.
template <Direction Dir, class KeyPlanes>
SC_HOST_DEVICE void crypt_pair(const KeyPlanes& keys, int rounds, const cuda_core::Block& in0,
                               const cuda_core::Block& in1, cuda_core::Block* out0,
                               cuda_core::Block* out1) {
  State s = pack(in0, in1);
  if constexpr (Dir == Direction::encrypt) {
    s = encrypt(s, keys, rounds);
  } else {
    s = decrypt(s, keys, rounds);
  }
  unpack(s, out0, out1);
}

}  // namespace sectorcrypt::bitsliced
