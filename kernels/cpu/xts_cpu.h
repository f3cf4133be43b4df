// The CPU AES-XTS batch kernels: what the engine and every CPU caller use.
//
// Whole sectors of one size, one key, one direction, one IV generator, many at a time.
// Dispatch picks the best implementation for this CPU once (Highway's runtime dispatch,
// or the 256-bit VAES path on VAES CPUs without AVX-512). Allocation-free, no
// data-dependent table lookups, on every implementation. Output is byte-identical to
// ref::xts_crypt_sectors.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/sector_format.h"
#include "kernels/status.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::cpu {

// A contiguous run of `bytes` (a whole number of sectors) starting at 512-byte sector
// `start_sector`, numbered per `format`. in == out works in place.
//
// RETURN VALUE: as ref::xts_crypt_sectors (invalid_key, invalid_format, invalid_length,
// invalid_buffer); on error `out` is untouched.
Status xts_crypt_sectors(const XtsKey& key, Direction dir, const SectorFormat& format,
                         uint64_t start_sector, const uint8_t* in, uint8_t* out,
                         std::size_t bytes);

// A gathered batch of `count` sectors of `sector_size` bytes: sector i is read from in[i]
// and written to out[i] (out[i] == in[i] works in place; other overlaps are the caller's
// responsibility) with IV number iv_numbers[i] under `iv_mode`.
//
// RETURN VALUE: ok, or invalid_key (empty key), invalid_format (sector size / IV mode),
// invalid_buffer (a null array or pointer). On error nothing is written.
Status xts_crypt_gathered(const XtsKey& key, Direction dir, IvMode iv_mode,
                          uint32_t sector_size, std::size_t count,
                          const uint8_t* const* in, uint8_t* const* out,
                          const uint64_t* iv_numbers);

// The implementation dispatch chose on this CPU, e.g. "VAES-AVX2", "AVX3_ZEN4", "AVX2",
// "SSE4", "EMU128".
const char* selected_implementation();

}  // namespace sectorcrypt::cpu
