#include "kernels/xts_reference.h"

#include <cstdint>
#include <cstring>

#include "kernels/aes_ct_core.h"
#include "kernels/secure_zero.h"
#include "kernels/xts_tweak.h"

namespace sectorcrypt::ref {
namespace {

using aes_ct::State;

State round_key(const AesRoundKeys& keys, int r) { return aes_ct::load(keys.rk[r]); }

// One XTS block: out = AES(in ^ T) ^ T.
void crypt_block(const AesRoundKeys& keys, Direction dir, const xts::Tweak& t,
                 const uint8_t in[16], uint8_t out[16]) {
  uint8_t x[16];
  xts::xor_block(in, t, x);
  if (dir == Direction::encrypt) {
    aes_encrypt_block(keys, x, x);
  } else {
    aes_decrypt_block(keys, x, x);
  }
  xts::xor_block(x, t, out);
  secure_zero(x, sizeof(x));
}

bool overlaps_partly(const void* in, const void* out, std::size_t len) {
  const auto a = reinterpret_cast<std::uintptr_t>(in);
  const auto b = reinterpret_cast<std::uintptr_t>(out);
  return a != b && a < b + len && b < a + len;
}

// XTS over one data unit, inputs already validated.
void crypt_unit(const XtsKey& key, Direction dir, const uint8_t iv[16], const uint8_t* in,
                uint8_t* out, std::size_t len) {
  const AesRoundKeys& data =
      dir == Direction::encrypt ? key.data_encrypt() : key.data_decrypt();
  uint8_t t_bytes[16];
  aes_encrypt_block(key.tweak_encrypt(), iv, t_bytes);
  xts::Tweak t = xts::load_tweak(t_bytes);

  const std::size_t full = len / 16;
  const std::size_t tail = len % 16;
  // With stealing, the last full block is handled together with the tail.
  const std::size_t plain_blocks = tail ? full - 1 : full;
  for (std::size_t j = 0; j < plain_blocks; ++j) {
    crypt_block(data, dir, t, in + 16 * j, out + 16 * j);
    t = xts::mul_x(t);
  }
  if (tail != 0) {
    // Ciphertext stealing (IEEE 1619 §5.3.2 / §5.4.2). Decryption swaps the order of the
    // two tweaks: the last full ciphertext block was made with the later one.
    const xts::Tweak t_next = xts::mul_x(t);
    const xts::Tweak& first = dir == Direction::encrypt ? t : t_next;
    const xts::Tweak& second = dir == Direction::encrypt ? t_next : t;
    const uint8_t* last_full_in = in + 16 * plain_blocks;
    uint8_t tail_in[16];
    std::memcpy(tail_in, last_full_in + 16, tail);
    uint8_t cc[16];
    crypt_block(data, dir, first, last_full_in, cc);
    uint8_t pp[16];
    std::memcpy(pp, tail_in, tail);
    std::memcpy(pp + tail, cc + tail, 16 - tail);
    std::memcpy(out + 16 * plain_blocks + 16, cc, tail);
    crypt_block(data, dir, second, pp, out + 16 * plain_blocks);
    secure_zero(tail_in, sizeof(tail_in));
    secure_zero(cc, sizeof(cc));
    secure_zero(pp, sizeof(pp));
  }
  secure_zero(t_bytes, sizeof(t_bytes));
  secure_zero(&t, sizeof(t));
}

}  // namespace

void aes_encrypt_block(const AesRoundKeys& enc, const uint8_t in[16], uint8_t out[16]) {
  State s = aes_ct::xor_state(aes_ct::load(in), round_key(enc, 0));
  for (int r = 1; r < enc.rounds; ++r) s = aes_ct::enc_round(s, round_key(enc, r));
  s = aes_ct::enc_last_round(s, round_key(enc, enc.rounds));
  aes_ct::store(s, out);
}

void aes_decrypt_block(const AesRoundKeys& dec, const uint8_t in[16], uint8_t out[16]) {
  State s = aes_ct::xor_state(aes_ct::load(in), round_key(dec, 0));
  for (int r = 1; r < dec.rounds; ++r) s = aes_ct::dec_round(s, round_key(dec, r));
  s = aes_ct::dec_last_round(s, round_key(dec, dec.rounds));
  aes_ct::store(s, out);
}

Status xts_crypt_unit(const XtsKey& key, Direction dir, const uint8_t iv[16],
                      const uint8_t* in, uint8_t* out, std::size_t len) {
  if (key.empty()) return Status::error(Errc::invalid_key, "key is empty (not created)");
  if (iv == nullptr || in == nullptr || out == nullptr) {
    return Status::error(Errc::invalid_buffer, "%s is null",
                         iv == nullptr ? "IV" : in == nullptr ? "input" : "output");
  }
  if (len < 16) {
    return Status::error(Errc::invalid_length,
                         "data unit is %zu bytes; XTS needs at least 16", len);
  }
  if (overlaps_partly(in, out, len)) {
    return Status::error(Errc::invalid_buffer,
                         "input and output overlap without being the same buffer");
  }
  crypt_unit(key, dir, iv, in, out, len);
  return Status();
}

Status xts_crypt_sectors(const XtsKey& key, Direction dir, const SectorFormat& format,
                         uint64_t start_sector, const uint8_t* in, uint8_t* out,
                         std::size_t bytes) {
  if (key.empty()) return Status::error(Errc::invalid_key, "key is empty (not created)");
  IvSequence ivs;
  if (Status s = validate_sector_run(format, start_sector, in, out, bytes, &ivs); !s) return s;
  const std::size_t n = bytes / format.sector_size;
  for (std::size_t i = 0; i < n; ++i) {
    uint8_t iv[16];
    make_iv(format.iv_mode, ivs.first + i * ivs.step, iv);
    const std::size_t off = i * format.sector_size;
    crypt_unit(key, dir, iv, in + off, out + off, format.sector_size);
  }
  return Status();
}

}  // namespace sectorcrypt::ref
