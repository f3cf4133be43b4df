// Where the table variant keeps its tables in shared memory, and how a lane reads them,
// host/device (SC_HOST_DEVICE) so the host tests read through the same layout.
//
// Bank-conflict freedom: shared memory has 32 banks of 4 bytes; word i is in bank i % 32.
// Each table is replicated 32 times, interleaved by lane: entry x of lane l's copy is word
// x * 32 + l of the table, in bank (l + base) % 32, a different bank for every lane.
// Whatever bytes the 32 lanes of a warp look up, no two lanes share a bank, so a lookup is
// one shared-memory wavefront and its timing does not depend on the data through bank
// conflicts (it still is a data-dependent access; see xts_cuda.h).
//
// All four column tables are stored (T1..T3 pre-rotated), 4 x 32 KiB, plus 32 KiB for
// the inverse S-box in decryption: 128 or 160 KiB per thread block. Storing the rotations
// instead of computing them saves 12 funnel shifts a round, a quarter of the round's
// integer work, which is what bounds this kernel; the price is one 1024-thread block per
// SM (see xts_table.cu).
//
#pragma once

#include <cstdint>

#include "kernels/cuda/aes_tables.h"
#include "kernels/portable.h"

namespace sectorcrypt::cuda_core {

inline constexpr int kTableCopies = 32;  // one per lane of a warp
inline constexpr int kTableWords = 256 * kTableCopies;
inline constexpr int kEncryptTableWords = 4 * kTableWords;           // Te0..Te3
inline constexpr int kDecryptTableWords = 4 * kTableWords + kTableWords;  // Td0..Td3, Si

// Writes the 32 lane copies of rotl(src[x], rot) for x < 256 into `dst` (kTableWords);
// thread `tid` of `nthreads` writes every nthreads-th word. The lanes of a warp read the
// same source word at a time (constant memory's broadcast case).
SC_HOST_DEVICE void fill_replicated(uint32_t* dst, const uint32_t* src, int rot, int tid,
                                    int nthreads) {
  for (int i = tid; i < kTableWords; i += nthreads) {
    dst[i] = aes_tables::rotl32(src[i / kTableCopies], rot);
  }
}

// The tables of one direction: column tables 0..3 at base + i * kTableWords, and for
// decryption the inverse S-box words after them.
SC_HOST_DEVICE void fill_direction(uint32_t* base, const uint32_t* col0,
                                   const uint32_t* inv_sbox_x4, int tid, int nthreads) {
  for (int i = 0; i < 4; ++i) fill_replicated(base + i * kTableWords, col0, 8 * i, tid, nthreads);
  if (inv_sbox_x4 != nullptr) {
    fill_replicated(base + 4 * kTableWords, inv_sbox_x4, 0, tid, nthreads);
  }
}

// A lane's view of one direction's tables (aes_table_core.h's lookup object). Table 4 is
// the inverse S-box. at(i, v, r) looks up byte r of the state word v in table i; its byte
// offset, (byte * 32 + lane) * 4, is built as ((v shifted) & 0x7f80) | lane * 4: one shift
// and one three-input logic op, the table's base going into the load's immediate.
struct LaneTables {
  const uint32_t* base;
  uint32_t lane;

  SC_HOST_DEVICE uint32_t index(int table, uint32_t x) const {
    return static_cast<uint32_t>(table * kTableWords) + ((x << 5) | lane);
  }
  SC_HOST_DEVICE uint32_t at(int table, uint32_t v, int r) const {
    const uint32_t byte_offset = (r == 0 ? v << 7 : v >> (8 * r - 7)) & 0x7f80u;
    const char* t = reinterpret_cast<const char*>(base + table * kTableWords);
    return *reinterpret_cast<const uint32_t*>(t + (byte_offset | (lane << 2)));
  }
  SC_HOST_DEVICE uint32_t col(int i, uint32_t x) const { return base[index(i, x)]; }
  SC_HOST_DEVICE uint32_t inv_sbox_x4(uint32_t x) const { return base[index(4, x)]; }
};

}  // namespace sectorcrypt::cuda_core
