#include "kernels/xts_key.h"

#include <cstring>

#include "kernels/secure_zero.h"

namespace sectorcrypt {

XtsKey& XtsKey::operator=(const XtsKey& other) {
  if (this != &other) {
    clear();
    std::memcpy(static_cast<void*>(this), &other, sizeof(XtsKey));
  }
  return *this;
}

XtsKey::~XtsKey() { clear(); }

void XtsKey::clear() { secure_zero(static_cast<void*>(this), sizeof(XtsKey)); }

Status XtsKey::create(const uint8_t* key, std::size_t len, XtsKey* out, KeyOptions options) {
  out->clear();
  if (key == nullptr) return Status::error(Errc::invalid_key, "key pointer is null");
  if (len != 32 && len != 64) {
    return Status::error(Errc::invalid_key,
                         "key is %zu bytes; XTS-AES needs 32 (XTS-AES-128) or 64 "
                         "(XTS-AES-256) bytes: Key1 || Key2",
                         len);
  }
  const std::size_t half = len / 2;
  // Constant-time comparison: no early exit that would time the first differing byte.
  uint8_t diff = 0;
  for (std::size_t i = 0; i < half; ++i) diff |= key[i] ^ key[half + i];
  if (diff == 0 && !options.allow_equal_halves) {
    return Status::error(Errc::invalid_key,
                         "the two key halves are equal (Key1 == Key2); XTS needs independent "
                         "halves");
  }
  aes_expand_encrypt_key(key, half, &out->data_enc_);
  aes_make_decrypt_key(out->data_enc_, &out->data_dec_);
  aes_expand_encrypt_key(key + half, half, &out->tweak_enc_);
  out->aes_key_bytes_ = half;
  return Status();
}

}  // namespace sectorcrypt
