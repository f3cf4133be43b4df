// Table-based AES rounds (the classic T-table formulation, FIPS-197 §5 folded into four
// lookups per column), host/device (SC_HOST_DEVICE). Where the tables live is the caller's
// choice through a lookup object, so the host tests run these very rounds on plain arrays
// while the kernel looks up its bank-conflict-free shared-memory copies:
//   tables.at(i, v, r)   for i < 4: column table i of the loaded direction, rotl(te0[x] or
//                        td0[x], 8 i) (aes_tables.h), at x = byte r of the word v;
//                        for i = 4: the inverse S-box entry of x in all four bytes
// (Taking the word and the row rather than the byte lets the GPU fold the byte
// extraction into the address arithmetic.)
//
// NOT constant-time: the addresses depend on the data and the key. See xts_cuda.h.
#pragma once

#include <cstdint>

#include "kernels/cuda/xts_block_core.h"
#include "kernels/portable.h"

namespace sectorcrypt::cuda_core {

SC_HOST_DEVICE Block xor_block(const Block& a, const Block& b) {
  return Block{{a.w[0] ^ b.w[0], a.w[1] ^ b.w[1], a.w[2] ^ b.w[2], a.w[3] ^ b.w[3]}};
}

// SubBytes, ShiftRows, MixColumns, AddRoundKey: column c takes row r from column c + r.
template <class Tables>
SC_HOST_DEVICE Block table_enc_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = t.at(0, s.w[c], 0) ^ t.at(1, s.w[(c + 1) & 3], 1) ^
             t.at(2, s.w[(c + 2) & 3], 2) ^ t.at(3, s.w[(c + 3) & 3], 3) ^
             rk.w[c];
  }
  return o;
}

// The last round: Te_i[x] holds S[x] in bytes i + 1 and i + 2 (mod 4), so row r's byte
// comes from Te_{r+2} under a mask, no shift.
template <class Tables>
SC_HOST_DEVICE Block table_enc_last_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = (t.at(2, s.w[c], 0) & 0x000000ffu) ^
             (t.at(3, s.w[(c + 1) & 3], 1) & 0x0000ff00u) ^
             (t.at(0, s.w[(c + 2) & 3], 2) & 0x00ff0000u) ^
             (t.at(1, s.w[(c + 3) & 3], 3) & 0xff000000u) ^ rk.w[c];
  }
  return o;
}

// The equivalent inverse cipher's round (AESDEC): column c takes row r from column c - r;
// the round key already carries InvMixColumns.
template <class Tables>
SC_HOST_DEVICE Block table_dec_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = t.at(0, s.w[c], 0) ^ t.at(1, s.w[(c + 3) & 3], 1) ^
             t.at(2, s.w[(c + 2) & 3], 2) ^ t.at(3, s.w[(c + 1) & 3], 3) ^
             rk.w[c];
  }
  return o;
}

template <class Tables>
SC_HOST_DEVICE Block table_dec_last_round(const Block& s, const Block& rk, const Tables& t) {
  Block o;
  for (int c = 0; c < 4; ++c) {
    o.w[c] = (t.at(4, s.w[c], 0) & 0x000000ffu) ^
             (t.at(4, s.w[(c + 3) & 3], 1) & 0x0000ff00u) ^
             (t.at(4, s.w[(c + 2) & 3], 2) & 0x00ff0000u) ^
             (t.at(4, s.w[(c + 1) & 3], 3) & 0xff000000u) ^ rk.w[c];
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
