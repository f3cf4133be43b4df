#include "host/peer_ciphers.h"

#include <gcrypt.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <stdexcept>

namespace sectorcrypt::peers {
namespace {

std::string openssl_error() {
  char buf[256];
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  return buf;
}

class OpensslXts final : public XtsPeer {
 public:
  OpensslXts(const uint8_t* key, std::size_t key_len, Direction dir)
      : ctx_(EVP_CIPHER_CTX_new()) {
    if (ctx_ == nullptr) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
    const EVP_CIPHER* cipher = key_len == 32 ? EVP_aes_128_xts() : EVP_aes_256_xts();
    if (key_len != 32 && key_len != 64) {
      EVP_CIPHER_CTX_free(ctx_);
      throw std::runtime_error("OpenSSL XTS key must be 32 or 64 bytes");
    }
    if (EVP_CipherInit_ex(ctx_, cipher, nullptr, key, nullptr,
                          dir == Direction::encrypt ? 1 : 0) != 1) {
      const std::string why = openssl_error();
      EVP_CIPHER_CTX_free(ctx_);
      throw std::runtime_error("OpenSSL refused the XTS key: " + why);
    }
  }
  ~OpensslXts() override { EVP_CIPHER_CTX_free(ctx_); }

  bool crypt_unit(const uint8_t iv[16], const uint8_t* in, uint8_t* out, std::size_t len,
                  std::string* error) override {
    int out_len = 0;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, iv, -1) != 1 ||
        EVP_CipherUpdate(ctx_, out, &out_len, in, static_cast<int>(len)) != 1 ||
        static_cast<std::size_t>(out_len) != len) {
      *error = "OpenSSL XTS: " + openssl_error();
      return false;
    }
    return true;
  }
  const char* name() const override { return "openssl"; }

 private:
  EVP_CIPHER_CTX* ctx_;
};

void init_gcrypt() {
  static const bool ready = [] {
    if (!gcry_check_version(GCRYPT_VERSION)) throw std::runtime_error("libgcrypt version mismatch");
    gcry_control(GCRYCTL_DISABLE_SECMEM, 0);
    gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    return true;
  }();
  (void)ready;
}

class GcryptXts final : public XtsPeer {
 public:
  GcryptXts(const uint8_t* key, std::size_t key_len, Direction dir) : dir_(dir) {
    init_gcrypt();
    if (key_len != 32 && key_len != 64) throw std::runtime_error("libgcrypt XTS key must be 32 or 64 bytes");
    const int algo = key_len == 32 ? GCRY_CIPHER_AES128 : GCRY_CIPHER_AES256;
    if (gcry_error_t e = gcry_cipher_open(&h_, algo, GCRY_CIPHER_MODE_XTS, 0)) {
      throw std::runtime_error(std::string("gcry_cipher_open: ") + gcry_strerror(e));
    }
    if (gcry_error_t e = gcry_cipher_setkey(h_, key, key_len)) {
      gcry_cipher_close(h_);
      throw std::runtime_error(std::string("libgcrypt refused the XTS key: ") + gcry_strerror(e));
    }
  }
  ~GcryptXts() override { gcry_cipher_close(h_); }

  bool crypt_unit(const uint8_t iv[16], const uint8_t* in, uint8_t* out, std::size_t len,
                  std::string* error) override {
    gcry_error_t e = gcry_cipher_setiv(h_, iv, 16);
    if (!e) {
      e = dir_ == Direction::encrypt ? gcry_cipher_encrypt(h_, out, len, in, len)
                                     : gcry_cipher_decrypt(h_, out, len, in, len);
    }
    if (e) {
      *error = std::string("libgcrypt XTS: ") + gcry_strerror(e);
      return false;
    }
    return true;
  }
  const char* name() const override { return "libgcrypt"; }

 private:
  gcry_cipher_hd_t h_ = nullptr;
  Direction dir_;
};

}  // namespace

std::unique_ptr<XtsPeer> make_openssl_xts(const uint8_t* key, std::size_t key_len,
                                          Direction dir) {
  return std::make_unique<OpensslXts>(key, key_len, dir);
}

std::unique_ptr<XtsPeer> make_libgcrypt_xts(const uint8_t* key, std::size_t key_len,
                                            Direction dir) {
  return std::make_unique<GcryptXts>(key, key_len, dir);
}

std::string openssl_version() { return OpenSSL_version(OPENSSL_VERSION); }

std::string libgcrypt_version() {
  init_gcrypt();
  return gcry_check_version(nullptr);
}

}  // namespace sectorcrypt::peers
