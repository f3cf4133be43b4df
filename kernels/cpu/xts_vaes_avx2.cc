// XTS with 256-bit VAES: each ymm register holds two consecutive AES blocks of a sector,
// eight registers (16 blocks, 256 bytes) are in flight, so the two AES units stay busy
// through the 4-cycle AESENC latency. Compiled with -mavx2 -mvaes -mvpclmulqdq (this
// file only, see vaes_avx2.cmake); reached only when available() says so.
//
// Per batch: the data and tweak round keys are broadcast to both lanes once.
// Per group of 16 sectors: their tweaks AES_K2(IV) are encrypted together, 8 ymm at once,
// instead of one latency-bound block per sector.
// Per sector: the 16 per-block tweaks T*x^j (j = 0..15) are made with per-lane variable
// shifts and one carry-less multiply by 0x87; each later 256-byte chunk multiplies them by
// x^16, which is a 2-byte lane shift plus a carry-less multiply of the 16 bits shifted out.
// The tweak XORs fold into the round keys: AES(P^T)^T is computed as
// aesenclast(rounds(P ^ (T^rk0)), rkN ^ T), which saves two XORs per register.
#include "kernels/cpu/xts_vaes_avx2.h"

#include <cstddef>
#include <cstdint>

#include "kernels/secure_zero.h"

#if defined(__x86_64__) && defined(__VAES__) && defined(__VPCLMULQDQ__) && defined(__AVX2__)
#include <immintrin.h>

namespace sectorcrypt::cpu::vaes_avx2 {
namespace {

constexpr int kLanes = 8;             // ymm registers in flight: 16 blocks
constexpr int kChunkBytes = kLanes * 32;
constexpr std::size_t kGroup = 16;    // sectors whose tweaks are encrypted together

inline __m256i load(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline void store(uint8_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
inline __m256i broadcast_key(const uint8_t rk[16]) {
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(rk)));
}

// The round keys of one schedule in both lanes; R = 10 or 14.
template <int R>
struct Keys {
  __m256i rk[R + 1];
  explicit Keys(const AesRoundKeys& k) {
    for (int r = 0; r <= R; ++r) rk[r] = broadcast_key(k.rk[r]);
  }
};

template <int R, bool kEnc>
inline __m256i middle_rounds(__m256i x, const Keys<R>& k, int r) {
  return kEnc ? _mm256_aesenc_epi128(x, k.rk[r]) : _mm256_aesdec_epi128(x, k.rk[r]);
}
template <bool kEnc>
inline __m256i last_round(__m256i x, __m256i key) {
  return kEnc ? _mm256_aesenclast_epi128(x, key) : _mm256_aesdeclast_epi128(x, key);
}

// Each 128-bit lane times x^16: a 2-byte shift left, and the 16 bits shifted out reduced
// by a carry-less multiply with 0x87 (the product has at most 23 bits, so it stays in the
// low qword).
inline __m256i mul_x16(__m256i t, __m256i poly) {
  const __m256i over = _mm256_bsrli_epi128(t, 14);
  return _mm256_xor_si256(_mm256_bslli_epi128(t, 2), _mm256_clmulepi64_epi128(over, poly, 0x00));
}

// Each lane times x^k with k = 0..56 per qword count: shl = (k, k) and shr = (64-k, 64-k)
// for each lane. A shift by 64 gives 0 with VPSRLVQ, so k = 0 needs no special case.
inline __m256i mul_x_var(__m256i t, __m256i shl, __m256i shr, __m256i poly) {
  const __m256i c = _mm256_srlv_epi64(t, shr);  // (lo >> 64-k, hi >> 64-k)
  const __m256i s = _mm256_sllv_epi64(t, shl);
  // hi gets lo's carry; lo gets hi's carry reduced by 0x87 (selector: c.hi * poly.lo).
  return _mm256_xor_si256(_mm256_xor_si256(s, _mm256_bslli_epi128(c, 8)),
                          _mm256_clmulepi64_epi128(c, poly, 0x01));
}

// Register i of the first chunk holds blocks 2i and 2i+1: tweaks T*x^(2i), T*x^(2i+1).
inline void first_tweaks(__m256i t, __m256i poly, __m256i tw[kLanes]) {
  for (int i = 0; i < kLanes; ++i) {
    const long long k0 = 2 * i, k1 = 2 * i + 1;
    const __m256i shl = _mm256_set_epi64x(k1, k1, k0, k0);
    const __m256i shr = _mm256_set_epi64x(64 - k1, 64 - k1, 64 - k0, 64 - k0);
    tw[i] = mul_x_var(t, shl, shr, poly);
  }
}

// One sector: `t` is its encrypted tweak (AES_K2(IV)) in both lanes.
template <int R, bool kEnc>
inline void crypt_sector(const Keys<R>& k, __m256i t, __m256i poly, const uint8_t* in,
                         uint8_t* out, std::size_t bytes) {
  __m256i tw[kLanes];
  first_tweaks(t, poly, tw);
  for (std::size_t off = 0; off < bytes; off += kChunkBytes) {
    __m256i x[kLanes];
    for (int i = 0; i < kLanes; ++i) {
      x[i] = _mm256_xor_si256(load(in + off + 32 * i), _mm256_xor_si256(tw[i], k.rk[0]));
    }
    for (int r = 1; r < R; ++r) {
      for (int i = 0; i < kLanes; ++i) x[i] = middle_rounds<R, kEnc>(x[i], k, r);
    }
    for (int i = 0; i < kLanes; ++i) {
      x[i] = last_round<kEnc>(x[i], _mm256_xor_si256(k.rk[R], tw[i]));
      store(out + off + 32 * i, x[i]);
      tw[i] = mul_x16(tw[i], poly);
    }
  }
}

// The IV block of IV number n as (lo, hi) qwords (sector_format.h's make_iv).
inline void iv_qwords(IvMode mode, uint64_t n, long long* lo, long long* hi) {
  switch (mode) {
    case IvMode::plain64:
      *lo = static_cast<long long>(n);
      *hi = 0;
      return;
    case IvMode::plain:
      *lo = static_cast<long long>(n & 0xffffffffu);
      *hi = 0;
      return;
    case IvMode::plain64be:
      *lo = 0;
      *hi = static_cast<long long>(__builtin_bswap64(n));
      return;
  }
}

// Encrypts the tweaks of sectors [first, first + n), n <= kGroup, into out[0..n).
template <int R>
inline void group_tweaks(const BatchArgs& a, const Keys<R>& tk, std::size_t first,
                         std::size_t n, __m128i out[kGroup]) {
  __m256i x[kGroup / 2];
  for (std::size_t i = 0; i < kGroup / 2; ++i) {
    long long lo[2] = {0, 0}, hi[2] = {0, 0};
    for (std::size_t j = 0; j < 2; ++j) {
      const std::size_t s = 2 * i + j;
      if (s < n) iv_qwords(a.iv_mode, a.iv_number(first + s), &lo[j], &hi[j]);
    }
    x[i] = _mm256_xor_si256(_mm256_set_epi64x(hi[1], lo[1], hi[0], lo[0]), tk.rk[0]);
  }
  for (int r = 1; r < R; ++r) {
    for (auto& v : x) v = _mm256_aesenc_epi128(v, tk.rk[r]);
  }
  for (std::size_t i = 0; i < kGroup / 2; ++i) {
    x[i] = _mm256_aesenclast_epi128(x[i], tk.rk[R]);
    out[2 * i] = _mm256_castsi256_si128(x[i]);
    out[2 * i + 1] = _mm256_extracti128_si256(x[i], 1);
  }
}

template <int R, bool kEnc>
void run(const BatchArgs& a) {
  const Keys<R> k(kEnc ? a.key->data_encrypt() : a.key->data_decrypt());
  const Keys<R> tk(a.key->tweak_encrypt());
  const __m256i poly = _mm256_set1_epi64x(0x87);
  alignas(32) __m128i tweaks[kGroup];
  for (std::size_t g = 0; g < a.count; g += kGroup) {
    const std::size_t n = a.count - g < kGroup ? a.count - g : kGroup;
    group_tweaks<R>(a, tk, g, n, tweaks);
    for (std::size_t s = 0; s < n; ++s) {
      crypt_sector<R, kEnc>(k, _mm256_broadcastsi128_si256(tweaks[s]), poly, a.in(g + s),
                            a.out(g + s), a.sector_size);
    }
  }
  // Tweaks are secret in XTS; round keys live in registers and are cleared with them.
  secure_zero(tweaks, sizeof(tweaks));
  _mm256_zeroall();
}

}  // namespace

void crypt_batch(const BatchArgs& args) {
  const bool enc = args.dir == Direction::encrypt;
  if (args.key->aes_key_bytes() == 16) {
    enc ? run<10, true>(args) : run<10, false>(args);
  } else {
    enc ? run<14, true>(args) : run<14, false>(args);
  }
}

}  // namespace sectorcrypt::cpu::vaes_avx2

#else  // not built for x86-64 with VAES: available() is false, so this is never reached.

namespace sectorcrypt::cpu::vaes_avx2 {
void crypt_batch(const BatchArgs&) { __builtin_trap(); }
}  // namespace sectorcrypt::cpu::vaes_avx2

#endif
