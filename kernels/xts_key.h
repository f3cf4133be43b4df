// An XTS-AES key: Key1 (data) || Key2 (tweak), validated and expanded once.
//
// Accepts 32 bytes (XTS-AES-128) or 64 bytes (XTS-AES-256). Equal halves are refused by
// default: IEEE 1619 requires independent keys, and Linux refuses them in FIPS mode. An
// explicit opt-in (KeyOptions::allow_equal_halves) accepts them for known-answer vectors.
// The object is fixed-size and allocation-free; every copy of the key material it holds
// is zeroed when it is destroyed or overwritten.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/aes_key_schedule.h"
#include "kernels/status.h"

namespace sectorcrypt {

struct KeyOptions {
  bool allow_equal_halves = false;
};

class XtsKey {
 public:
  XtsKey() = default;
  XtsKey(const XtsKey& other) = default;
  XtsKey& operator=(const XtsKey& other);
  ~XtsKey();

  // Validates and expands `key` (`len` bytes) into *out. On error *out is left empty and
  // the Status names what was wrong (never the key bytes).
  static Status create(const uint8_t* key, std::size_t len, XtsKey* out,
                       KeyOptions options = {});

  bool empty() const { return aes_key_bytes_ == 0; }
  std::size_t aes_key_bytes() const { return aes_key_bytes_; }  // 16 or 32: per half
  std::size_t xts_key_bytes() const { return 2 * aes_key_bytes_; }  // 32 or 64

  const AesRoundKeys& data_encrypt() const { return data_enc_; }   // Key1
  const AesRoundKeys& data_decrypt() const { return data_dec_; }   // Key1, inverse cipher
  const AesRoundKeys& tweak_encrypt() const { return tweak_enc_; } // Key2

  // Zeroes all key material and leaves the key empty.
  void clear();

 private:
  AesRoundKeys data_enc_{};
  AesRoundKeys data_dec_{};
  AesRoundKeys tweak_enc_{};
  std::size_t aes_key_bytes_ = 0;
};

}  // namespace sectorcrypt
