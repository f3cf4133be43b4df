// AES-XTS over a batch of whole sectors with Highway, compiled once per target:
// foreach_target.h re-includes this file with each target's HWY_NAMESPACE, and
// HWY_EXPORT / HWY_DYNAMIC_DISPATCH pick the best one this CPU runs.
//
// A vector holds N = 1, 2 or 4 AES blocks (128, 256 or 512 bits); a chunk is 8 vectors
// (8N blocks) in flight, enough independent AES work to cover the AESENC latency.
//   Per batch:  round keys are broadcast to every block of a vector (LoadDup128) straight
//               from the XtsKey's schedules, expanded once when the key was made.
//   Per group of 8N sectors: their IV blocks sit side by side in vector lanes and are
//               encrypted with Key2 together, instead of one latency-bound AES per sector.
//   Per sector: the first chunk's tweaks T*x^j (j < 8N) come straight from T with per-lane
//               shifts; each later chunk multiplies them by x^(8N), an N-byte shift plus a
//               fold of the N bytes shifted out.
//   Per block:  AES(P ^ T) ^ T is Xor3(P, T, rk0), the middle rounds, then the last round
//               keyed with rkN ^ T (the last round ends by XORing its key).
// No heap, no data-dependent table lookups: Highway's AES ops are AES-NI/VAES where the
// target has them and table-free bit-sliced code elsewhere (EMU128, SSE2, SSSE3).

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
// EMU128 serve those CPUs.
#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_ALL_SVE | HWY_RVV)
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
  explicit WideKeys(const AesRoundKeys& keys) {
    for (int r = 0; r <= kRounds; ++r) rk[r] = hn::LoadDup128(D(), keys.rk[r]);
  }
  ~WideKeys() { secure_zero(rk, sizeof(rk)); }
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

// kCount vectors of blocks: out = AES(in ^ t) ^ t per block, all rounds interleaved.
template <int kRounds, bool kEnc, size_t kCount>
HWY_INLINE void CryptVecs(const WideKeys<kRounds>& keys, const V (&t)[kCount],
                          const uint8_t* in, uint8_t* out) {
  const D d;
  V s[kCount];
  const V k0 = keys.rk[0];
  for (size_t i = 0; i < kCount; ++i) {
    s[i] = hn::Xor3(hn::LoadU(d, in + i * kVecBytes), t[i], k0);
  }
  for (int r = 1; r < kRounds; ++r) {
    const V k = keys.rk[r];
    for (size_t i = 0; i < kCount; ++i) s[i] = Round<kEnc>(s[i], k);
  }
  const V kl = keys.rk[kRounds];
  for (size_t i = 0; i < kCount; ++i) {
    hn::StoreU(LastRound<kEnc>(s[i], hn::Xor(kl, t[i])), d, out + i * kVecBytes);
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

// x86 targets from SSE4 up have a carry-less multiply as wide as the vectors used here
// (PCLMULQDQ, or VPCLMULQDQ on the VAES targets): one op folds the bits shifted out of a
// block. Elsewhere the fold is out ^ out<<1 ^ out<<2 ^ out<<7.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_SSE4
constexpr bool kClmulFold = true;
#else
constexpr bool kClmulFold = false;
#endif

// `over` * 0x87 for over < 2^56 in the low half of each block (the high half is zero or
// ignored); the product stays within the low half.
HWY_INLINE V64 FoldLow(V64 over) {
  const D64 d64;
  if constexpr (kClmulFold) {
    return hn::CLMulLower(over, hn::Set(d64, 0x87));
  } else {
    return hn::Xor3(over, hn::ShiftLeft<1>(over),
                    hn::Xor(hn::ShiftLeft<2>(over), hn::ShiftLeft<7>(over)));
  }
}

// T * x^k in each block, k per lane (equal in both halves of a block), 0 <= k <= 56: the
// 128-bit shift is two 64-bit shifts plus the carry from low to high half; the k bits out
// of the top fold into the low half times 0x87 (as xts::mul_x_pow). t_half is t >> 1, so
// that k = 0 shifts right by 63, not by the undefined 64.
HWY_INLINE V64 MulXPow(V64 t, V64 t_half, V64 k, V64 k_rev) {
  const D64 d64;
  const V64 carry = hn::Shr(t_half, k_rev);  // [out of low half, out of high half]
  const V64 low_to_high = hn::ShiftLeftLanes<1>(d64, carry);
  const V64 top_to_low = hn::ShiftRightLanes<1>(d64, carry);
  return hn::Xor3(hn::Shl(t, k), low_to_high, FoldLow(top_to_low));
}

// w * x^(8 * kBytes) in each block, kBytes <= 7: a byte shift within the block; the bytes
// shifted out land at the bottom (ShiftRightBytes zero-fills) and fold in times 0x87.
template <size_t kBytes>
HWY_INLINE V MulXBytes(V w) {
  const D d;
  const D64 d64;
  const V64 shifted = hn::BitCast(d64, hn::ShiftLeftBytes<kBytes>(d, w));
  const V64 out = hn::BitCast(d64, hn::ShiftRightBytes<16 - kBytes>(d, w));
  return hn::BitCast(d, hn::Xor(shifted, FoldLow(out)));
}

// One sector of `chunks` chunks whose encrypted tweak T is at `tweak`.
template <int kRounds, bool kEnc>
HWY_INLINE void CryptSector(const WideKeys<kRounds>& keys, const FirstChunkShifts& sh,
                            const uint8_t* tweak, const uint8_t* in, uint8_t* out,
                            size_t chunks) {
  const D d;
  const D64 d64;
  const V64 t = hn::BitCast(d64, hn::LoadDup128(d, tweak));
  const V64 t_half = hn::ShiftRight<1>(t);
  V w[kVecs];
  for (size_t i = 0; i < kVecs; ++i) {
    w[i] = hn::BitCast(d, MulXPow(t, t_half, sh.k[i], sh.k_rev[i]));
  }
  for (;;) {
    CryptVecs<kRounds, kEnc, kVecs>(keys, w, in, out);
    if (--chunks == 0) break;
    in += kChunkBytes;
    out += kChunkBytes;
    for (size_t i = 0; i < kVecs; ++i) w[i] = MulXBytes<kChunkBlocks / 8>(w[i]);
  }
}

// Encrypts the first n <= kGroup IV blocks of `blocks` in place with Key2; the buffer's
// other blocks are scratch. One vector runs alone; more run as a full chunk.
template <int kRounds>
HWY_INLINE void EncryptTweaks(const WideKeys<kRounds>& key2, uint8_t* blocks, size_t n) {
  if (n <= kN) {
    const V zero1[1] = {hn::Zero(D())};
    CryptVecs<kRounds, true, 1>(key2, zero1, blocks, blocks);
    return;
  }
  std::memset(blocks + 16 * n, 0, 16 * (kGroup - n));  // defined bytes in unused lanes
  V zero[kVecs];
  for (auto& z : zero) z = hn::Zero(D());
  CryptVecs<kRounds, true, kVecs>(key2, zero, blocks, blocks);
}

template <int kRounds, bool kEnc>
void CryptBatchT(const BatchArgs& a) {
  const XtsKey& key = *a.key;
  const WideKeys<kRounds> data(kEnc ? key.data_encrypt() : key.data_decrypt());
  const WideKeys<kRounds> key2(key.tweak_encrypt());
  FirstChunkShifts sh;
  MakeShifts(&sh);
  const size_t chunks = a.sector_size / kChunkBytes;
  alignas(64) uint8_t tweaks[16 * kGroup];
  for (size_t first = 0; first < a.count; first += kGroup) {
    const size_t n = a.count - first < kGroup ? a.count - first : kGroup;
    for (size_t i = 0; i < n; ++i) make_iv(a.iv_mode, a.iv_number(first + i), tweaks + 16 * i);
    EncryptTweaks<kRounds>(key2, tweaks, n);
    for (size_t i = 0; i < n; ++i) {
      CryptSector<kRounds, kEnc>(data, sh, tweaks + 16 * i, a.in(first + i), a.out(first + i),
                                 chunks);
    }
  }
  secure_zero(tweaks, sizeof(tweaks));  // tweaks are key-derived
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
