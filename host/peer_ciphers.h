// The peers sectorcrypt is checked and measured against: OpenSSL EVP aes-{128,256}-xts and
// libgcrypt's XTS mode. Each object holds one key and one direction, set up once, and
// sets the IV per data unit the way dm-crypt does. Used by the tests (oracles), the
// benchmarks and `sectorcrypt bench` (peers in the same run). Host-side: they allocate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kernels/sector_format.h"

namespace sectorcrypt::peers {

class XtsPeer {
 public:
  virtual ~XtsPeer() = default;
  // One data unit (>= 16 bytes; stealing for partial blocks) with the raw 16-byte IV.
  // Returns false and sets *error when the library refuses.
  virtual bool crypt_unit(const uint8_t iv[16], const uint8_t* in, uint8_t* out,
                          std::size_t len, std::string* error) = 0;
  virtual const char* name() const = 0;
};

// Throw std::runtime_error when the library refuses the key (e.g. OpenSSL refuses equal
// halves).
std::unique_ptr<XtsPeer> make_openssl_xts(const uint8_t* key, std::size_t key_len,
                                          Direction dir);
std::unique_ptr<XtsPeer> make_libgcrypt_xts(const uint8_t* key, std::size_t key_len,
                                            Direction dir);

// Library versions, for reports.
std::string openssl_version();
std::string libgcrypt_version();

}  // namespace sectorcrypt::peers
