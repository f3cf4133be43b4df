// Moving a batch's bytes between the caller's scatter/gather lists and the slot, and
// laying out the per-sector arrays the kernels read. Pure memory work: no allocation,
// no locks; run in the parallel crypt stage (and the complete stage for CUDA scatter).
#pragma once

#include <sys/uio.h>

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

// Fills iv[] and key_index[] for the part's sectors.
void fill_sector_numbers(Batch& b, const Part& p);

// CPU: chooses each copy part's mode without copying where it can: direct when the
// part is one contiguous run on both sides, else gathered with only the sectors that
// straddle segment boundaries staged (copied into the slot). Zero-copy parts stay staged.
void prepare_in_place_of_caller(Batch& b);

// CUDA: copies every copy part's bytes into the slot (mode staged).
void stage_all(Batch& b);

// After the crypt: copies staged results out to the callers' destinations (staged copy
// parts, and the staged sectors of gathered parts). Parts with an error are skipped:
// their destination is left as it was.
void scatter_results(Batch& b);

}  // namespace sectorcrypt::engine
