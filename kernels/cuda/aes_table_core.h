// Table-based AES rounds (the classic T-table formulation, FIPS-197 §5 folded into four
// lookups per column), host/device (SC_HOST_DEVICE). Where the tables live is the caller's
// choice through a lookup object, so the host tests run these very rounds on plain arrays
// while the kernel looks up its bank-conflict-free shared-memory copies:
//   tables.te0(x)       aes_tables::AesTables::te0[x]
//   tables.td0(x)       ... td0[x]
//   tables.inv_sbox(x)  the inverse S-box entry, in the low byte (upper bytes zero)
// Only te0/td0 are stored; the column rotations T1..T3 are rotl by 8/16/24 (one funnel
// shift on the GPU), which keeps one table per direction in shared memory.
//
// NOT constant-time: the addresses depend on the data and the key. See xts_cuda.h.
#pragma once

#include <cstdint>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/portable.h"

namespace sectorcrypt::cuda_core {

SC_HOST_DEVICE uint32_t rotl32(uint32_t v, int k) { return (v << k) | (v >> (32 - k)); }

SC_HOST_DEVICE uint32_t byte_of(uint32_t v, int r) { return (v >> (8 * r)) & 0xffu; }

SC_HOST_DEVICE Block xor_block(const Block& a, const Block& b) {
  return Block{{a.w[0] ^ b.w[0], a.w[1] ^ b.w[1], a.w[2] ^ b.w[2], a.w[3] ^ b.w[3]}};
}

// SubBytes, ShiftRows, MixColumns, AddRoundKey: column c takes row r from column c + r.
template <class Tables>
SC_HOST_DEVICE Block table_enc_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = t.te0(byte_of(s.w[c], 0)) ^ rotl32(t.te0(byte_of(s.w[(c + 1) & 3], 1)), 8) ^
             rotl32(t.te0(byte_of(s.w[(c + 2) & 3], 2)), 16) ^
             rotl32(t.te0(byte_of(s.w[(c + 3) & 3], 3)), 24) ^ rk.w[c];
  }
  return o;
}

// The last round: S[x] is byte 1 and byte 2 of te0[x]; move one of them into row r.
template <class Tables>
SC_HOST_DEVICE Block table_enc_last_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = ((t.te0(byte_of(s.w[c], 0)) >> 8) & 0x000000ffu) ^
             (t.te0(byte_of(s.w[(c + 1) & 3], 1)) & 0x0000ff00u) ^
             (t.te0(byte_of(s.w[(c + 2) & 3], 2)) & 0x00ff0000u) ^
             ((t.te0(byte_of(s.w[(c + 3) & 3], 3)) << 8) & 0xff000000u) ^ rk.w[c];
  }
  return o;
}

// The equivalent inverse cipher's round (AESDEC): column c takes row r from column c - r;
// the round key already carries InvMixColumns.
template <class Tables>
SC_HOST_DEVICE Block table_dec_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = t.td0(byte_of(s.w[c], 0)) ^ rotl32(t.td0(byte_of(s.w[(c + 3) & 3], 1)), 8) ^
             rotl32(t.td0(byte_of(s.w[(c + 2) & 3], 2)), 16) ^
             rotl32(t.td0(byte_of(s.w[(c + 1) & 3], 3)), 24) ^ rk.w[c];
  }
  return o;
}

template <class Tables>
SC_HOST_DEVICE Block table_dec_last_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = t.inv_sbox(byte_of(s.w[c], 0)) ^ (t.inv_sbox(byte_of(s.w[(c + 3) & 3], 1)) << 8) ^
             (t.inv_sbox(byte_of(s.w[(c + 2) & 3], 2)) << 16) ^
             (t.inv_sbox(byte_of(s.w[(c + 1) & 3], 3)) << 24) ^ rk.w[c];
  }
  return o;
}

// Whole blocks; Rounds (10 or 14) is a template argument so the GPU unrolls the rounds and
// reads the round keys at fixed offsets.
template <int Rounds, class Keys, class Tables>
SC_HOST_DEVICE Block table_encrypt(const Block& in, const Keys& keys, const Tables& t) {
  Block s = xor_block(in, keys.round(0));
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 1; r < Rounds; ++r) s = table_enc_round(s, keys.round(r), t);
  return table_enc_last_round(s, keys.round(Rounds), t);
}

template <int Rounds, class Keys, class Tables>
SC_HOST_DEVICE Block table_decrypt(const Block& in, const Keys& keys, const Tables& t) {
  Block s = xor_block(in, keys.round(0));
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 1; r < Rounds; ++r) s = table_dec_round(s, keys.round(r), t);
  return table_dec_last_round(s, keys.round(Rounds), t);
}

}  // namespace sectorcrypt::cuda_core
