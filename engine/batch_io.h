// Moving a batch's bytes between the caller's scatter/gather lists and the slot, and
// laying out the per-sector arrays the kernels read. Pure memory work: no allocation,
// no locks; run in the parallel crypt stage (and the complete stage for CUDA scatter).
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "engine/batch.h"

namespace sectorcrypt::engine {

// Copies len bytes starting `offset` bytes into the segment list to `dst`.
void gather_from(const iovec* segs, uint32_t count, uint64_t offset, uint8_t* dst,
                 std::size_t len);
// Copies len bytes from `src` into the segment list starting `offset` bytes in.
void scatter_to(const iovec* segs, uint32_t count, uint64_t offset, const uint8_t* src,
                std::size_t len);

// Walks `len` bytes from `offset` of two segment lists of equal total side by side, in
// the largest pieces contiguous in both: fn(in, out, n, pos), pos counting from
// `offset`. With the same list twice it yields one list's contiguous pieces.
template <class Fn>
void for_each_piece(const iovec* in, uint32_t in_count, const iovec* out, uint32_t out_count,
                    uint64_t offset, uint64_t len, Fn&& fn) {
  uint32_t i = 0, o = 0;
  uint64_t io = offset, oo = offset;  // offsets within segment i / o
  while (i < in_count && io >= in[i].iov_len) io -= in[i++].iov_len;
  while (o < out_count && oo >= out[o].iov_len) oo -= out[o++].iov_len;
  uint64_t pos = 0;
  while (pos < len && i < in_count && o < out_count) {
    const uint64_t n = std::min<uint64_t>(
        {len - pos, in[i].iov_len - io, out[o].iov_len - oo});
    fn(static_cast<const uint8_t*>(in[i].iov_base) + io, static_cast<uint8_t*>(out[o].iov_base) + oo,
       static_cast<std::size_t>(n), pos);
    pos += n;
    if ((io += n) == in[i].iov_len) io = 0, ++i;
    if ((oo += n) == out[o].iov_len) oo = 0, ++o;
  }
}

// Fills iv[] and key_index[] for the part's sectors.
void fill_sector_numbers(Batch& b, const Part& p);

// CPU: chooses each copy part's mode without copying where it can: direct when the
// part is one contiguous run on both sides, else gathered with only the sectors that
// straddle segment boundaries staged (copied into the slot). Zero-copy parts stay staged.
void prepare_in_place_of_caller(Batch& b);

// CUDA: copies a copy part's bytes into the slot (mode staged).
void stage_in(Batch& b, const Part& p);

// After the crypt: copies staged results out to the callers' destinations (staged copy
// parts, and the staged sectors of gathered parts). Parts with an error are skipped:
// their destination is left as it was.
void scatter_results(Batch& b);

}  // namespace sectorcrypt::engine
