// AES-128/256 key expansion into the encryption schedule and the decryption schedule of
// the equivalent inverse cipher (the layout AES-NI's AESDEC and Highway's AESRoundInv
// expect), so every kernel, scalar, SIMD or GPU, consumes the same round keys.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sectorcrypt {

inline constexpr int kAesMaxRounds = 14;

struct AesRoundKeys {
  // rk[0] is whitened into the input, rk[rounds] is the last round's key.
  alignas(16) uint8_t rk[kAesMaxRounds + 1][16];
  int rounds;  // 10 for AES-128, 14 for AES-256
};

// Expands a 16- or 32-byte AES key. `key_bytes` must be 16 or 32 (callers validate).
void aes_expand_encrypt_key(const uint8_t* key, std::size_t key_bytes, AesRoundKeys* enc);

// Turns an encryption schedule into the equivalent-inverse-cipher schedule:
// dec.rk[0] = enc.rk[Nr], dec.rk[i] = InvMixColumns(enc.rk[Nr - i]), dec.rk[Nr] = enc.rk[0].
void aes_make_decrypt_key(const AesRoundKeys& enc, AesRoundKeys* dec);

}  // namespace sectorcrypt
