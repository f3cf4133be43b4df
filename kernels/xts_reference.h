// The portable reference AES-XTS: plain C++, constant-time (aes_ct_core.h), no heap.
// Slow on purpose-built hardware terms but simple enough to read against IEEE 1619; it is
// the oracle every faster kernel (Highway, VAES, CUDA) is tested against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/aes_key_schedule.h"
#include "kernels/sector_format.h"
#include "kernels/status.h"
#include "kernels/xts_key.h"

namespace sectorcrypt::ref {

// One AES block with an encryption (or, for decrypt, equivalent-inverse) schedule.
void aes_encrypt_block(const AesRoundKeys& enc, const uint8_t in[16], uint8_t out[16]);
void aes_decrypt_block(const AesRoundKeys& dec, const uint8_t in[16], uint8_t out[16]);

// XTS over one data unit of `len` >= 16 bytes, with ciphertext stealing when len is not a
// multiple of 16. `iv` is the 16-byte tweak input before encryption with Key2 (for
// dm-crypt, make_iv() of the sector number). in == out works in place.
//
// RETURN VALUE: ok, or invalid_key (empty key), invalid_length (len < 16),
// invalid_buffer (null or partly overlapping buffers). On error `out` is untouched.
Status xts_crypt_unit(const XtsKey& key, Direction dir, const uint8_t iv[16],
                      const uint8_t* in, uint8_t* out, std::size_t len);

// XTS over a contiguous run of whole sectors starting at 512-byte sector `start_sector`,
// numbered per `format` (see sector_format.h). in == out works in place.
//
// RETURN VALUE: ok, or the validation errors of validate_sector_run() (which include
// iv_sequence_for()'s), or invalid_key. On error `out` is untouched.
Status xts_crypt_sectors(const XtsKey& key, Direction dir, const SectorFormat& format,
                         uint64_t start_sector, const uint8_t* in, uint8_t* out,
                         std::size_t bytes);

}  // namespace sectorcrypt::ref
