// AES-XTS over a batch of whole sectors with Highway, compiled once per target:
// foreach_target.h re-includes this file with each target's HWY_NAMESPACE, and
// HWY_EXPORT / HWY_DYNAMIC_DISPATCH pick the best one this CPU runs.
//
// A vector holds N = 1, 2 or 4 AES blocks (128, 256 or 512 bits); a chunk is 8 vectors
// (8N blocks) in flight, enough independent AES work to cover the AESENC latency.
//   Per batch:  round keys are broadcast to every block of a vector once (the schedules
//               were expanded once, when the XtsKey was made).
//   Per group of 8N sectors: their IV blocks sit side by side in vector lanes and are
//               encrypted with Key2 together, instead of one latency-bound AES per sector.
//   Per sector: the first chunk's tweaks T*x^j (j < 8N) come straight from T with per-lane
//               shifts; each later chunk multiplies them by x^(8N), an N-byte shift plus a
//               fold of the N bytes shifted out. The next chunk's tweaks (or the next
//               sector's first) are made between this chunk's rounds, off the critical path.
//   Per block:  AES(P ^ T) ^ T is Xor3(P, U, rk0 ^ rkN), the middle rounds, then the last
//               round keyed with U = T ^ rkN (the last round ends by XORing its key); the
//               tweaks are kept and advanced as U, so the XOR with T is free.
// On Zen 4 (AVX3_ZEN4, one thread, in cache) this runs AES-256 at about 14.9 GB/s for
// 4096-byte and 14.1 GB/s for 512-byte sectors, 2.4x OpenSSL 3.0's EVP AES-XTS.
// No heap, no data-dependent table lookups: Highway's AES ops are AES-NI/VAES where the
// target has them and table-free code elsewhere (SSSE3, EMU128).

// EMU128, the portable fallback, is the only fallback with AES ops (HWY_SCALAR has
// none). Highway turns it off for GCC < 14 over a GCC 12.2 vectorizer bug on 32-bit
// targets; on x86-64 the tests run every one of our bytes through it against the
// reference, so we opt back in.
#ifndef HWY_BROKEN_EMU128
#define HWY_BROKEN_EMU128 0
#endif
// Compile every attainable target, the EMU128 fallback included, not just those better
// than the compiler's baseline: tests force each one, and the fallback must exist.
#ifndef HWY_COMPILE_ALL_ATTAINABLE
#define HWY_COMPILE_ALL_ATTAINABLE
#endif
// Highway leaves AVX3_DL (Ice Lake and later: VAES, VPCLMULQDQ) out by default; without it
// those CPUs would get AVX3, whose AES is 128-bit AESENC.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
// Scalable vectors (SVE, RVV) cannot live in the arrays this file keeps 8 of; NEON and
// EMU128 serve those CPUs. SSE2 (x86-64 without SSSE3: AMD before 2011) would add a
// tenth of this file's build time; EMU128 covers it, correctly if slowly. SSSE3 stays:
// low-power Atoms without AES-NI (e.g. Celeron J1900) still sit in storage boxes.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_ALL_SVE | HWY_RVV | HWY_SSE2)
#endif

#include <cstddef>
#include <cstdint>
#include <cstring>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/xts_highway.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include "kernels/cpu/xts_batch_args.h"
#include "kernels/cpu/xts_highway.h"
#include "kernels/secure_zero.h"

HWY_BEFORE_NAMESPACE();
namespace sectorcrypt::cpu::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;

// At most 4 blocks per vector: a chunk (32 blocks) then divides the smallest sector, and
// the largest in-chunk tweak offset x^31 needs a single fold (one fold works to x^56).
// x86 targets without VAES (AVX2, AVX3) split a wide AESRound into 128-bit AESENCs plus
// lane shuffles, so they run 128-bit vectors, which also keeps their tweak math short.
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3
using D = hn::CappedTag<uint8_t, 16>;
#else
using D = hn::CappedTag<uint8_t, 64>;
#endif
using D64 = hn::Repartition<uint64_t, D>;
using V = hn::Vec<D>;
using V64 = hn::Vec<D64>;

constexpr size_t kVecBytes = D().MaxLanes();
constexpr size_t kN = kVecBytes / 16;            // AES blocks per vector
constexpr size_t kVecs = 8;                      // vectors in flight
constexpr size_t kChunkBlocks = kVecs * kN;
constexpr size_t kChunkBytes = 16 * kChunkBlocks;
constexpr size_t kGroup = kChunkBlocks;          // sectors whose tweaks are made together
static_assert(512 % kChunkBytes == 0, "every sector size must be whole chunks");

// One schedule's round keys, each repeated into every block of a vector: broadcast once
// per batch, then used as plain register or memory operands.
template <int kRounds>
struct WideKeys {
  V rk[kRounds + 1];
  V first_xor_last;  // rk[0] ^ rk[kRounds]: whitening for a block carrying t ^ rk[kRounds]
  explicit WideKeys(const AesRoundKeys& keys) {
    for (int r = 0; r <= kRounds; ++r) rk[r] = hn::LoadDup128(D(), keys.rk[r]);
    first_xor_last = hn::Xor(rk[0], rk[kRounds]);
  }
  ~WideKeys() {
    secure_zero(rk, sizeof(rk));
    secure_zero(&first_xor_last, sizeof(first_xor_last));
  }
  WideKeys(const WideKeys&) = delete;
  WideKeys& operator=(const WideKeys&) = delete;
};

template <bool kEnc>
HWY_INLINE V Round(V s, V k) {
  if constexpr (kEnc) {
    return hn::AESRound(s, k);
  } else {
    return hn::AESRoundInv(s, k);  // the schedule is already the equivalent inverse cipher's
  }
}

template <bool kEnc>
HWY_INLINE V LastRound(V s, V k) {
  if constexpr (kEnc) {
    return hn::AESLastRound(s, k);
  } else {
    return hn::AESLastRoundInv(s, k);
  }
}

// Plain AES encryption of kCount vectors in place, all rounds interleaved. Used once per
// group of sectors, so the round keys are broadcast where they are used, which saves the
// batch a wide copy of the tweak key to make and to wipe (a third of a one-sector batch).
template <int kRounds, size_t kCount>
HWY_INLINE void EncryptVecs(const AesRoundKeys& keys, uint8_t* blocks) {
  const D d;
  V s[kCount];
  for (size_t i = 0; i < kCount; ++i) {
    s[i] = hn::Xor(hn::Load(d, blocks + i * kVecBytes), hn::LoadDup128(d, keys.rk[0]));
  }
  for (int r = 1; r < kRounds; ++r) {
    const V k = hn::LoadDup128(d, keys.rk[r]);
    for (size_t i = 0; i < kCount; ++i) s[i] = hn::AESRound(s[i], k);
  }
  const V last = hn::LoadDup128(d, keys.rk[kRounds]);
  for (size_t i = 0; i < kCount; ++i) {
    hn::Store(hn::AESLastRound(s[i], last), d, blocks + i * kVecBytes);
  }
}

// The per-lane shift counts of a sector's first chunk: vector i, block j holds T*x^(iN+j).
struct FirstChunkShifts {
  V64 k[kVecs];      // iN + j, in both 64-bit halves of block j
  V64 k_rev[kVecs];  // 63 - k
};

HWY_INLINE void MakeShifts(FirstChunkShifts* sh) {
  const D64 d64;
  const V64 block_index = hn::ShiftRight<1>(hn::Iota(d64, 0));
  for (size_t i = 0; i < kVecs; ++i) {
    sh->k[i] = hn::Add(block_index, hn::Set(d64, i * kN));
    sh->k_rev[i] = hn::Sub(hn::Set(d64, 63), sh->k[i]);
  }
}

// The bits a shift moves out of a block fold back in times 0x87: one carry-less multiply
// where it is as wide as the vectors (PCLMULQDQ; VPCLMULQDQ on the VAES targets), else
// shifts, XORs and a lane swap. (On Zen 4 VPCLMULQDQ shares the AES pipes, yet the five
// extra ops of the shift form measured slower there, 13.7 vs 14.2 GB/s AES-256.)
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSE4
constexpr bool kClmulFold = true;
#else
constexpr bool kClmulFold = false;
#endif

// From b = [c_lo, c_hi], the bits shifted out of each half of a block (c_hi < 2^57):
// [c_hi * 0x87, c_lo], i.e. the high half's overflow folded into the low half and the low
// half's carry moved into the high half.
HWY_INLINE V64 CrossCarries(V64 b) {
  const D64 d64;
  if constexpr (kClmulFold) {
    return hn::Xor(hn::ShiftLeftLanes<1>(d64, b), hn::CLMulUpper(b, hn::Set(d64, 0x87)));
  } else {
    const V64 high_half = hn::Dup128VecFromValues(d64, 0, ~uint64_t{0});
    const V64 times_86 =
        hn::Xor3(hn::ShiftLeft<1>(b), hn::ShiftLeft<2>(b), hn::ShiftLeft<7>(b));
    return hn::Shuffle01(hn::Xor(b, hn::And(high_half, times_86)));
  }
}

// T * x^k in each block, k per lane (equal in both halves of a block), 0 <= k <= 56, as
// xts::mul_x_pow. t_half is t >> 1, so that k = 0 shifts right by 63, not by 64.
HWY_INLINE V64 MulXPow(V64 t, V64 t_half, V64 k, V64 k_rev) {
  return hn::Xor(hn::Shl(t, k), CrossCarries(hn::Shr(t_half, k_rev)));
}

// w * x^(8 * kBytes) ^ c in each block, kBytes <= 7. With CLMul: a byte shift within the
// block, and the bytes shifted out (at the bottom, ShiftRightBytes zero-fills) times 0x87.
template <size_t kBytes>
HWY_INLINE V MulXBytesXor(V w, V c) {
  const D d;
  const D64 d64;
  if constexpr (kClmulFold) {
    const V64 shifted = hn::BitCast(d64, hn::ShiftLeftBytes<kBytes>(d, w));
    const V64 out = hn::BitCast(d64, hn::ShiftRightBytes<16 - kBytes>(d, w));
    const V64 folded = hn::CLMulLower(out, hn::Set(d64, 0x87));
    return hn::BitCast(d, hn::Xor3(shifted, folded, hn::BitCast(d64, c)));
  } else {
    const V64 w64 = hn::BitCast(d64, w);
    const V64 carries = CrossCarries(hn::ShiftRight<64 - 8 * kBytes>(w64));
    return hn::BitCast(d, hn::Xor3(hn::ShiftLeft<8 * kBytes>(w64), carries,
                                   hn::BitCast(d64, c)));
  }
}

// Multiplying by x^(8N) is linear, so the tweaks can advance chunk to chunk while they
// carry rk[kRounds]: (t ^ k) * x^(8N) ^ (k * x^(8N) ^ k) = t * x^(8N) ^ k.
constexpr size_t kChunkShiftBytes = kChunkBlocks / 8;

template <int kRounds>
HWY_INLINE V AdvanceConstant(const WideKeys<kRounds>& keys) {
  const V last = keys.rk[kRounds];
  return MulXBytesXor<kChunkShiftBytes>(last, last);
}

// Vector i of a sector's first chunk, as carried: T * x^(iN + j) ^ rk[kRounds] in block j.
template <int kRounds>
HWY_INLINE V FirstTweaks(const WideKeys<kRounds>& keys, const FirstChunkShifts& sh, V64 t,
                         V64 t_half, size_t i) {
  return hn::Xor(hn::BitCast(D(), MulXPow(t, t_half, sh.k[i], sh.k_rev[i])), keys.rk[kRounds]);
}

// One chunk: out = AES(in ^ t) ^ t per block for the carried tweaks u (t ^ rk[kRounds]),
// then u becomes the next chunk's: u advanced by x^(8N) when kNextInSector, else the
// first tweaks of the sector whose encrypted tweak is at next_tweak. The next tweaks are
// made between the rounds, one vector per round, not after the chunk: a chunk's 8 x 14
// AES ops fill the out-of-order window, which then cannot reach the next chunk's work.
template <int kRounds, bool kEnc, bool kNextInSector>
HWY_INLINE void CryptChunk(const WideKeys<kRounds>& keys, V advance, const FirstChunkShifts& sh,
                           const uint8_t* next_tweak, V (&u)[kVecs], const uint8_t* in,
                           uint8_t* out) {
  static_assert(kVecs < kRounds, "one vector of next tweaks per middle round");
  const D d;
  const D64 d64;
  V s[kVecs];
  for (size_t i = 0; i < kVecs; ++i) {
    s[i] = hn::Xor3(hn::LoadU(d, in + i * kVecBytes), u[i], keys.first_xor_last);
  }
  V64 t = hn::Zero(d64);
  V64 t_half = t;
  if constexpr (!kNextInSector) {
    t = hn::BitCast(d64, hn::LoadDup128(d, next_tweak));
    t_half = hn::ShiftRight<1>(t);
  }
  V next[kVecs];
  for (size_t r = 1; r <= kVecs; ++r) {
    const V k = keys.rk[r];
    for (size_t i = 0; i < kVecs; ++i) s[i] = Round<kEnc>(s[i], k);
    if constexpr (kNextInSector) {
      next[r - 1] = MulXBytesXor<kChunkShiftBytes>(u[r - 1], advance);
    } else {
      next[r - 1] = FirstTweaks(keys, sh, t, t_half, r - 1);
    }
  }
  for (int r = kVecs + 1; r < kRounds; ++r) {
    const V k = keys.rk[r];
    for (size_t i = 0; i < kVecs; ++i) s[i] = Round<kEnc>(s[i], k);
  }
  for (size_t i = 0; i < kVecs; ++i) {
    hn::StoreU(LastRound<kEnc>(s[i], u[i]), d, out + i * kVecBytes);
    u[i] = next[i];
  }
}

// Encrypts the first n <= kGroup IV blocks of `blocks` (aligned) in place with Key2; the
// buffer's other blocks are scratch. One vector runs alone; more run as a full chunk.
template <int kRounds>
HWY_INLINE void EncryptTweaks(const AesRoundKeys& key2, uint8_t* blocks, size_t n) {
  if (n <= kN) {
    EncryptVecs<kRounds, 1>(key2, blocks);
    return;
  }
  std::memset(blocks + 16 * n, 0, 16 * (kGroup - n));  // defined bytes in unused lanes
  EncryptVecs<kRounds, kVecs>(key2, blocks);
}

template <int kRounds, bool kEnc>
void CryptBatchT(const BatchArgs& a) {
  const XtsKey& key = *a.key;
  const WideKeys<kRounds> data(kEnc ? key.data_encrypt() : key.data_decrypt());
  const V advance = AdvanceConstant(data);
  FirstChunkShifts sh;
  MakeShifts(&sh);
  const size_t chunks = a.sector_size / kChunkBytes;
  alignas(64) uint8_t tweaks[16 * kGroup];
  V u[kVecs];  // the current chunk's tweaks, carried as t ^ rk[kRounds]
  for (size_t first = 0; first < a.count; first += kGroup) {
    const size_t n = a.count - first < kGroup ? a.count - first : kGroup;
    for (size_t i = 0; i < n; ++i) make_iv(a.iv_mode, a.iv_number(first + i), tweaks + 16 * i);
    EncryptTweaks<kRounds>(key.tweak_encrypt(), tweaks, n);
    const V64 t = hn::BitCast(D64(), hn::LoadDup128(D(), tweaks));
    for (size_t i = 0; i < kVecs; ++i) u[i] = FirstTweaks(data, sh, t, hn::ShiftRight<1>(t), i);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* in = a.in(first + i);
      uint8_t* out = a.out(first + i);
      for (size_t c = 1; c < chunks; ++c, in += kChunkBytes, out += kChunkBytes) {
        CryptChunk<kRounds, kEnc, true>(data, advance, sh, nullptr, u, in, out);
      }
      // After the group's last sector the next tweaks are made from its first: unused.
      const uint8_t* next_tweak = tweaks + (i + 1 < n ? 16 * (i + 1) : 0);
      CryptChunk<kRounds, kEnc, false>(data, advance, sh, next_tweak, u, in, out);
    }
  }
  secure_zero(u, sizeof(u));  // tweaks are key-derived
  secure_zero(tweaks, sizeof(tweaks));
}

}  // namespace

// Kept outside the anonymous namespace: HWY_EXPORT names these per target.
void CryptBatch(const BatchArgs& a) {
  const bool aes128 = a.key->data_encrypt().rounds == 10;
  if (a.dir == Direction::encrypt) {
    aes128 ? CryptBatchT<10, true>(a) : CryptBatchT<14, true>(a);
  } else {
    aes128 ? CryptBatchT<10, false>(a) : CryptBatchT<14, false>(a);
  }
}

int64_t TargetBit() { return HWY_TARGET; }

}  // namespace sectorcrypt::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace sectorcrypt::cpu {

HWY_EXPORT(CryptBatch);
HWY_EXPORT(TargetBit);

namespace highway {
namespace {

// HWY_DYNAMIC_POINTER reads the chosen target without choosing one first.
void ensure_chosen() {
  hwy::ChosenTarget& chosen = hwy::GetChosenTarget();
  if (!chosen.IsInitialized()) chosen.Update(hwy::SupportedTargets());
}

}  // namespace

void crypt_batch(const BatchArgs& args) { HWY_DYNAMIC_DISPATCH(CryptBatch)(args); }

int64_t current_target() {
  ensure_chosen();
  return HWY_DYNAMIC_DISPATCH(TargetBit)();
}

BatchFn current_batch_fn() {
  ensure_chosen();
  return HWY_DYNAMIC_POINTER(CryptBatch);
}

int64_t compiled_targets() { return HWY_TARGETS; }

}  // namespace highway
}  // namespace sectorcrypt::cpu
#endif  // HWY_ONCE
