// How sectors are laid out and numbered: the dm-crypt compatible sector format.
//
// IV generators (the XTS tweak input, before it is encrypted with Key2), as in dm-crypt:
//   plain64    the 64-bit sector number, little-endian, zero padded to 16 bytes
//   plain      the low 32 bits of the sector number, little-endian, zero padded
//   plain64be  the 64-bit sector number, big-endian, in the last 8 of the 16 bytes
// Sector numbers: a request names where it starts as a 512-byte sector number (byte
// offset / 512, like a bio). By default the IV counts 512-byte units even when sectors are
// larger (LUKS2 with 4096-byte sectors: the IV of the sector at byte offset o is o / 512,
// so consecutive sectors' IVs step by 8). With iv_large_sectors the IV counts sectors of
// the configured size (o / sector_size), and the start must be sector-aligned. Sector
// numbers wrap modulo 2^64 (plain: 2^32).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/portable.h"
#include "kernels/status.h"

namespace sectorcrypt {

enum class Direction { encrypt, decrypt };

enum class IvMode { plain64, plain, plain64be };

const char* iv_mode_name(IvMode mode);  // "plain64", "plain", "plain64be"

struct SectorFormat {
  uint32_t sector_size = 512;     // 512, 1024, 2048 or 4096
  IvMode iv_mode = IvMode::plain64;
  bool iv_large_sectors = false;  // count IVs in sector_size units instead of 512 bytes
};

// Ok, or invalid_format naming the bad field.
Status validate_format(const SectorFormat& format);

// The IV numbering of a run of sectors: sector i of the run has IV number
// first + i * step (mod 2^64).
struct IvSequence {
  uint64_t first;
  uint64_t step;
};

// Maps a run that starts at 512-byte sector `start_sector` onto IV numbers. Fails with
// invalid_buffer when iv_large_sectors is set and the start is not sector-aligned.
// `format` must be valid.
Status iv_sequence_for(const SectorFormat& format, uint64_t start_sector, IvSequence* out);

// The 16-byte IV block for IV number n.
SC_HOST_DEVICE void make_iv(IvMode mode, uint64_t n, uint8_t iv[16]) {
  for (int i = 0; i < 16; ++i) iv[i] = 0;
  switch (mode) {
    case IvMode::plain64:
      for (int i = 0; i < 8; ++i) iv[i] = static_cast<uint8_t>(n >> (8 * i));
      break;
    case IvMode::plain:
      for (int i = 0; i < 4; ++i) iv[i] = static_cast<uint8_t>(n >> (8 * i));
      break;
    case IvMode::plain64be:
      for (int i = 0; i < 8; ++i) iv[15 - i] = static_cast<uint8_t>(n >> (8 * i));
      break;
  }
}

// Checks a contiguous sector run and numbers it: `bytes` a positive whole number of
// sectors, buffers non-null, `in`/`out` either the same pointer (in place) or not
// overlapping, then *ivs = iv_sequence_for(format, start_sector). Every contiguous entry
// point (reference, CPU kernels) validates through this one function.
Status validate_sector_run(const SectorFormat& format, uint64_t start_sector, const void* in,
                           void* out, std::size_t bytes, IvSequence* ivs);

}  // namespace sectorcrypt
