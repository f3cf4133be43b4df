#include "kernels/aes_key_schedule.h"

#include <cstring>

#include "kernels/aes_ct_core.h"
#include "kernels/secure_zero.h"

namespace sectorcrypt {
namespace {

uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void store_le32(uint32_t v, uint8_t* p) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// SubWord through the constant-time S-box (key bytes are secret too).
uint32_t sub_word(uint32_t w) { return static_cast<uint32_t>(aes_ct::sub_bytes8(w)); }

// RotWord for a little-endian word: byte 0 moves to byte 3.
uint32_t rot_word(uint32_t w) { return (w >> 8) | (w << 24); }

}  // namespace

void aes_expand_encrypt_key(const uint8_t* key, std::size_t key_bytes, AesRoundKeys* enc) {
  const int nk = static_cast<int>(key_bytes / 4);  // 4 or 8 words
  enc->rounds = nk + 6;
  const int total = 4 * (enc->rounds + 1);
  uint32_t w[4 * (kAesMaxRounds + 1)];
  for (int i = 0; i < nk; ++i) w[i] = load_le32(key + 4 * i);
  uint32_t rcon = 1;
  for (int i = nk; i < total; ++i) {
    uint32_t t = w[i - 1];
    if (i % nk == 0) {
      t = sub_word(rot_word(t)) ^ rcon;
      rcon = static_cast<uint32_t>(aes_ct::xtime8(rcon));
    } else if (nk == 8 && i % nk == 4) {
      t = sub_word(t);
    }
    w[i] = w[i - nk] ^ t;
  }
  for (int i = 0; i < total; ++i) store_le32(w[i], &enc->rk[i / 4][4 * (i % 4)]);
  for (int r = enc->rounds + 1; r <= kAesMaxRounds; ++r) std::memset(enc->rk[r], 0, 16);
  secure_zero(w, sizeof(w));
}

void aes_make_decrypt_key(const AesRoundKeys& enc, AesRoundKeys* dec) {
  const int nr = enc.rounds;
  dec->rounds = nr;
  std::memcpy(dec->rk[0], enc.rk[nr], 16);
  for (int i = 1; i < nr; ++i) {
    aes_ct::State s = aes_ct::load(enc.rk[nr - i]);
    s.w[0] = aes_ct::inv_mix_columns8(s.w[0]);
    s.w[1] = aes_ct::inv_mix_columns8(s.w[1]);
    aes_ct::store(s, dec->rk[i]);
  }
  std::memcpy(dec->rk[nr], enc.rk[0], 16);
  for (int r = nr + 1; r <= kAesMaxRounds; ++r) std::memset(dec->rk[r], 0, 16);
}

}  // namespace sectorcrypt
