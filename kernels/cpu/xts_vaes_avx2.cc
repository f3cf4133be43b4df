// XTS with 256-bit VAES: each ymm register holds two consecutive AES blocks of a sector,
// eight registers (16 blocks, 256 bytes) are in flight, so the two AES units stay busy
// through the 4-cycle AESENC latency. Compiled with -mavx2 -mvaes -mvpclmulqdq (this
// file only, see vaes_avx2.cmake); reached only when available() says so.
//
// Per batch: the data and tweak round keys are broadcast to both lanes once.
// Per group of 16 sectors: their tweaks AES_K2(IV) are encrypted together, 8 ymm at once,
// one group ahead, instead of one latency-bound block per sector.
// Per block: the tweak sequence T*x^j runs on the integer units (add/adc, a mask of 0x87),
// one 256-byte chunk ahead, into a small table the vector code reads. The vector ports are
// the bottleneck (VPCLMULQDQ competes with AESENC for the same pipes); the integer units
// are otherwise idle. The chain continues from one sector into the next, so short sectors
// do not stall at their start.
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
inline __m256i middle_round(__m256i x, const Keys<R>& k, int r) {
  return kEnc ? _mm256_aesenc_epi128(x, k.rk[r]) : _mm256_aesdec_epi128(x, k.rk[r]);
}
template <bool kEnc>
inline __m256i last_round(__m256i x, __m256i key) {
  return kEnc ? _mm256_aesenclast_epi128(x, key) : _mm256_aesdeclast_epi128(x, key);
}

// An empty asm that takes and returns all eight states: the compiler must finish a round on
// every register before it starts the next. Without it clang runs one register through
// all rounds at a time to save registers, leaving one AES chain in flight (35% slower).
// GCC keeps the rounds interleaved by itself, and schedules 1-5% better without it.
inline void round_barrier([[maybe_unused]] __m256i x[kLanes]) {
#if defined(__clang__)
  __asm__("" : "+x"(x[0]), "+x"(x[1]), "+x"(x[2]), "+x"(x[3]), "+x"(x[4]), "+x"(x[5]),
          "+x"(x[6]), "+x"(x[7]));
#endif
}

// Writes tweak (lo, hi) to dst and advances it to the next block's: T*x, a 128-bit left
// shift with the carry out of bit 127 folded back as 0x87. Inline asm because compilers
// spend ~10 instructions here (shld and moves) and the loop is front-end bound for
// AES-128; this is 7, and the loop-carried chain is 2 cycles (add, xor).
inline void store_and_advance(uint64_t& lo, uint64_t& hi, uint64_t* dst) {
  uint64_t m;
  __asm__(
      "sarx %[s], %[h], %[m]\n\t"
      "and $0x87, %k[m]\n\t"
      "mov %[l], %[d0]\n\t"
      "mov %[h], %[d1]\n\t"
      "add %[l], %[l]\n\t"
      "adc %[h], %[h]\n\t"
      "xor %[m], %[l]"
      : [l] "+&r"(lo), [h] "+&r"(hi), [m] "=&r"(m), [d0] "=m"(dst[0]), [d1] "=m"(dst[1])
      : [s] "r"(uint64_t{63})
      : "cc");
}

// The tweaks of the 16 blocks of one chunk, as 8 ymm of (lo, hi, lo, hi).
inline void chunk_tweaks(uint64_t& lo, uint64_t& hi, uint64_t tab[2 * 16]) {
#pragma GCC unroll 16
  for (int j = 0; j < 16; ++j) store_and_advance(lo, hi, tab + 2 * j);
}

// Each IV generator (sector_format.h's make_iv) as a byte shuffle of a 128-bit lane that
// holds the IV number in its low qword: the fixed positions of its bytes; -128 zeroes.
inline __m256i iv_layout(IvMode mode) {
  alignas(16) int8_t c[16];
  for (int j = 0; j < 16; ++j) {
    switch (mode) {
      case IvMode::plain64:
        c[j] = static_cast<int8_t>(j < 8 ? j : -128);
        break;
      case IvMode::plain:
        c[j] = static_cast<int8_t>(j < 4 ? j : -128);
        break;
      case IvMode::plain64be:
        c[j] = static_cast<int8_t>(j < 8 ? -128 : 15 - j);
        break;
    }
  }
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(c)));
}

// The IV blocks of sectors first .. first + 15, two per register (lanes past the batch
// get IV number 0 and are never used). Whole groups take no scalar detour.
inline void group_ivs(const BatchArgs& a, std::size_t first, __m256i layout,
                      __m256i iv[kGroup / 2]) {
  const std::size_t n = a.count - first < kGroup ? a.count - first : kGroup;
  if (n == kGroup && a.iv_numbers != nullptr) {
#pragma GCC unroll 8
    for (std::size_t i = 0; i < kGroup / 2; ++i) {
      const auto* src = reinterpret_cast<const __m128i*>(a.iv_numbers + first + 2 * i);
      // (n0, n1) to qwords (n0, n0, n1, n0): each lane's low qword holds its number.
      iv[i] = _mm256_permute4x64_epi64(_mm256_castsi128_si256(_mm_loadu_si128(src)), 0x10);
    }
  } else if (n == kGroup) {
    // first + i * step (mod 2^64) by vector adds; the high qwords collect junk the layout
    // shuffle never reads.
    const uint64_t n0 = a.iv_first + first * a.iv_step;
    __m256i v = _mm256_set_epi64x(0, static_cast<long long>(n0 + a.iv_step), 0,
                                  static_cast<long long>(n0));
    const __m256i inc = _mm256_set1_epi64x(static_cast<long long>(2 * a.iv_step));
#pragma GCC unroll 8
    for (std::size_t i = 0; i < kGroup / 2; ++i, v = _mm256_add_epi64(v, inc)) iv[i] = v;
  } else {
    for (std::size_t i = 0; i < kGroup / 2; ++i) {
      const std::size_t s = first + 2 * i;
      const uint64_t n_even = 2 * i < n ? a.iv_number(s) : 0;
      const uint64_t n_odd = 2 * i + 1 < n ? a.iv_number(s + 1) : 0;
      iv[i] = _mm256_set_epi64x(0, static_cast<long long>(n_odd), 0,
                                static_cast<long long>(n_even));
    }
  }
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kGroup / 2; ++i) iv[i] = _mm256_shuffle_epi8(iv[i], layout);
}

// Encrypts the tweaks of sectors first .. first + 15 (those in the batch) into out.
template <int R>
inline void group_tweaks(const BatchArgs& a, const Keys<R>& tk, __m256i layout,
                         std::size_t first, uint64_t out[kGroup][2]) {
  __m256i x[kGroup / 2];
  group_ivs(a, first, layout, x);
#pragma GCC unroll 8
  for (auto& v : x) v = _mm256_xor_si256(v, tk.rk[0]);
#pragma GCC unroll 14
  for (int r = 1; r < R; ++r) {
#pragma GCC unroll 8
    for (auto& v : x) v = _mm256_aesenc_epi128(v, tk.rk[r]);
    round_barrier(x);
  }
#pragma GCC unroll 8
  for (std::size_t i = 0; i < kGroup / 2; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out[2 * i]),
                       _mm256_aesenclast_epi128(x[i], tk.rk[R]));
  }
}

// Sectors one after another, 256-byte chunks within each; the tweak table of the next
// chunk (this sector's or the next one's) is written while this chunk's rounds run.
// kNt: non-temporal stores (see kStreamingStoreMinBytes).
template <int R, bool kEnc, bool kNt>
__attribute__((noinline)) void run(const BatchArgs& a) {
  if (a.count == 0) return;
  const Keys<R> k(kEnc ? a.key->data_encrypt() : a.key->data_decrypt());
  const Keys<R> tk(a.key->tweak_encrypt());
  const __m256i layout = iv_layout(a.iv_mode);
  const std::size_t chunks = a.sector_size / kChunkBytes;
  alignas(32) uint64_t group[2][kGroup][2];  // encrypted tweaks: this group, the next
  alignas(32) uint64_t tab[2][2 * 16];       // per-block tweaks: this chunk, the next
  group_tweaks<R>(a, tk, layout, 0, group[0]);
  uint64_t lo = group[0][0][0], hi = group[0][0][1];
  chunk_tweaks(lo, hi, tab[0]);
  int cur = 0;
  for (std::size_t s = 0; s < a.count; ++s) {
    if (s % kGroup == 0 && s + kGroup < a.count) {
      group_tweaks<R>(a, tk, layout, s + kGroup, group[(s / kGroup + 1) % 2]);
    }
    const uint8_t* in = a.in(s);
    uint8_t* out = a.out(s);
    // The next sector's tweak, read a sector early so that its chain, on the critical path
    // for short sectors, starts without waiting on a load.
    const std::size_t sn = s + 1 < a.count ? s + 1 : s;
    const uint64_t next_lo = group[sn / kGroup % 2][sn % kGroup][0];
    const uint64_t next_hi = group[sn / kGroup % 2][sn % kGroup][1];
    for (std::size_t c = 0; c < chunks; ++c, in += kChunkBytes, out += kChunkBytes) {
      const __m256i* tw = reinterpret_cast<const __m256i*>(tab[cur]);
      __m256i x[kLanes];
#pragma GCC unroll 8
      for (int i = 0; i < kLanes; ++i) {
        x[i] = _mm256_xor_si256(load(in + 32 * i), _mm256_xor_si256(tw[i], k.rk[0]));
      }
      if (c + 1 < chunks) {
        chunk_tweaks(lo, hi, tab[cur ^ 1]);
      } else if (s + 1 < a.count) {
        lo = next_lo;
        hi = next_hi;
        chunk_tweaks(lo, hi, tab[cur ^ 1]);
      }
#pragma GCC unroll 14
      for (int r = 1; r < R; ++r) {
#pragma GCC unroll 8
        for (int i = 0; i < kLanes; ++i) x[i] = middle_round<R, kEnc>(x[i], k, r);
        round_barrier(x);
      }
#pragma GCC unroll 8
      for (int i = 0; i < kLanes; ++i) {
        const __m256i y = last_round<kEnc>(x[i], _mm256_xor_si256(k.rk[R], tw[i]));
        if constexpr (kNt) {
          _mm256_stream_si256(reinterpret_cast<__m256i*>(out + 32 * i), y);
        } else {
          store(out + 32 * i, y);
        }
      }
      cur ^= 1;
    }
  }
  if constexpr (kNt) _mm_sfence();  // order the streaming stores before later ones
  // Tweaks are secret in XTS; round keys in registers go with zeroall, spilled ones with
  // scrub_stack().
  secure_zero(group, sizeof(group));
  secure_zero(tab, sizeof(tab));
  _mm256_zeroall();
}

template <int R>
void run_for_rounds(const BatchArgs& a, bool nt) {
  const bool enc = a.dir == Direction::encrypt;
  if (nt) {
    enc ? run<R, true, true>(a) : run<R, false, true>(a);
  } else {
    enc ? run<R, true, false>(a) : run<R, false, false>(a);
  }
}

// The compiler spills broadcast round keys (and states) to run()'s frame, where they
// cannot be named to be zeroed; a larger frame at the same depth overwrites them. run()
// frames are under 2.5 KiB; this costs ~0.5% of a 128 KiB batch.
__attribute__((noinline)) void scrub_stack() {
  uint8_t frame[4096];
  secure_zero(frame, sizeof(frame));
  __asm__ volatile("" : : "r"(frame) : "memory");
}

}  // namespace

void crypt_batch(const BatchArgs& args) {
  // Streaming stores need 32-byte alignment, which contiguous output keeps per sector.
  const bool nt = args.out_ptrs == nullptr && args.in_base != args.out_base &&
                  (reinterpret_cast<std::uintptr_t>(args.out_base) & 31) == 0 &&
                  args.count * args.sector_size >= kStreamingStoreMinBytes;
  if (args.key->aes_key_bytes() == 16) {
    run_for_rounds<10>(args, nt);
  } else {
    run_for_rounds<14>(args, nt);
  }
  scrub_stack();
}

}  // namespace sectorcrypt::cpu::vaes_avx2

#else  // not built for x86-64 with VAES: available() is false, so this is never reached.

namespace sectorcrypt::cpu::vaes_avx2 {
void crypt_batch(const BatchArgs&) { __builtin_trap(); }
}  // namespace sectorcrypt::cpu::vaes_avx2

#endif
