// Where the table variant keeps its tables in shared memory, and how a lane reads them,
// host/device (SC_HOST_DEVICE) so the host tests read through the same layout.
//
// Bank-conflict freedom: shared memory has 32 banks of 4 bytes; word i is in bank i % 32.
// Each table is replicated 32 times, interleaved by lane: entry x of lane l's copy is word
// x * 32 + l, always in bank l. Whatever bytes the 32 lanes of a warp look up, every lane
// hits its own bank, so a lookup is one shared-memory wavefront and its timing does not
// depend on the data through bank conflicts (it still is a data-dependent access: cache
// and other microarchitectural effects are not claimed away; see xts_cuda.h). Cost:
// 256 * 32 * 4 = 32 KiB for te0 or td0, and 64 * 32 * 4 = 8 KiB for the packed inverse
// S-box. The column rotations T1..T3 are computed (rotl), not stored.
#pragma once

#include <cstdint>

#include "kernels/cuda/aes_tables.h"
#include "kernels/portable.h"

namespace sectorcrypt::cuda_core {

inline constexpr int kTableCopies = 32;  // one per lane of a warp
inline constexpr int kColumnTableWords = 256 * kTableCopies;
inline constexpr int kInvSboxWords = 64 * kTableCopies;

// Writes the replicated copy of `src` (n words) into `dst` (n * 32 words); thread `tid` of
// `nthreads` writes every nthreads-th word. All lanes of a warp read the same source word
// at a time, which constant memory serves as one broadcast.
SC_HOST_DEVICE void fill_replicated(uint32_t* dst, const uint32_t* src, int n, int tid,
                                    int nthreads) {
  for (int i = tid; i < n * kTableCopies; i += nthreads) dst[i] = src[i / kTableCopies];
}

// A lane's view of the replicated tables. `cols` holds te0 or td0 (whichever direction the
// phase needs), `inv` the packed inverse S-box; both already offset by the lane.
struct LaneTables {
  const uint32_t* cols;
  const uint32_t* inv;

  SC_HOST_DEVICE LaneTables(const uint32_t* col_table, const uint32_t* inv_table, int lane)
      : cols(col_table + lane), inv(inv_table ? inv_table + lane : nullptr) {}

  SC_HOST_DEVICE uint32_t te0(uint32_t x) const { return cols[x * kTableCopies]; }
  SC_HOST_DEVICE uint32_t td0(uint32_t x) const { return cols[x * kTableCopies]; }
  SC_HOST_DEVICE uint32_t inv_sbox(uint32_t x) const {
    return aes_tables::unpack_inv_sbox(inv[(x >> 2) * kTableCopies], x);
  }
};

}  // namespace sectorcrypt::cuda_core
