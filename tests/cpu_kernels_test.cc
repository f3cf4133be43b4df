// The CPU batch kernels against the reference, byte for byte: every Highway target this
// machine runs (forced one at a time with hwy::SetSupportedTargetsForTest, the EMU128
// fallback included) and the public dispatched entry (xts_cpu.h), over both key sizes,
// every sector size, IV generator and IV unit, both directions, in place and out of
// place, contiguous and gathered sectors, batch sizes around each target's tweak group
// and chunk, and IV numbers that wrap at 2^32 and 2^64. Each batch's reference output is
// computed once and every implementation is held to it; the reference is slow, so the
// batches stay small (about 2 MB in all).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "hwy/targets.h"
#include "kernels/cpu/xts_batch_args.h"
#include "kernels/cpu/xts_cpu.h"
#include "kernels/cpu/xts_highway.h"
#include "kernels/cpu/xts_vaes_avx2.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

constexpr uint8_t kPoison = 0xa5;
constexpr uint64_t kMax64 = std::numeric_limits<uint64_t>::max();

// The Highway targets compiled into the kernels that this CPU runs, read once before any
// test forces a target.
const std::vector<int64_t>& runnable_targets() {
  static const std::vector<int64_t> targets = [] {
    std::vector<int64_t> out;
    const int64_t bits = hwy::SupportedTargets() & cpu::highway::compiled_targets();
    for (int64_t t = bits; t != 0; t &= t - 1) out.push_back(t & -t);
    return out;
  }();
  return targets;
}

// Forces one Highway target for a scope, then returns dispatch to the CPU's best.
class ForcedTarget {
 public:
  explicit ForcedTarget(int64_t target) { hwy::SetSupportedTargetsForTest(target); }
  ~ForcedTarget() { hwy::SetSupportedTargetsForTest(0); }
  ForcedTarget(const ForcedTarget&) = delete;
  ForcedTarget& operator=(const ForcedTarget&) = delete;
};

// One batch, laid out in a pool: sector i at pool[offset[i]] for input and output alike.
// Gathered batches scatter the sectors over the pool, out of order, unaligned, with gaps.
struct Batch {
  XtsKey key;
  Direction dir = Direction::encrypt;
  IvMode iv_mode = IvMode::plain64;
  uint32_t sector_size = 512;
  std::size_t count = 0;
  bool in_place = false;
  bool gathered = false;
  // Contiguous: IV number of sector i is iv_first + i * iv_step. When `format` and
  // `start` describe it too, the public xts_crypt_sectors runs it as well.
  uint64_t iv_first = 0;
  uint64_t iv_step = 0;
  bool has_format = false;
  SectorFormat format;
  uint64_t start = 0;
  std::vector<uint64_t> iv_numbers;  // gathered: one per sector
  std::vector<std::size_t> offset;
  std::vector<uint8_t> in_pool;
  std::vector<uint8_t> expected_out_pool;  // the output pool after a correct run
  std::string label;
};

const char* dir_name(Direction d) { return d == Direction::encrypt ? "encrypt" : "decrypt"; }

XtsKey random_key(std::size_t len) {
  const auto raw = testing::random_xts_key(len);
  XtsKey key;
  EXPECT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
  return key;
}

// Fills the pool with random input and computes the reference's output pool.
void finish(Batch* b) {
  b->in_pool = testing::random_bytes(b->in_pool.size());
  b->expected_out_pool = b->in_place ? b->in_pool
                                     : std::vector<uint8_t>(b->in_pool.size(), kPoison);
  if (b->has_format) {
    // Contiguous from offset 0: the reference's own run API.
    ASSERT_TRUE(ref::xts_crypt_sectors(b->key, b->dir, b->format, b->start, b->in_pool.data(),
                                       b->expected_out_pool.data(),
                                       b->count * b->sector_size));
  } else {
    for (std::size_t i = 0; i < b->count; ++i) {
      const uint64_t n = b->gathered ? b->iv_numbers[i] : b->iv_first + i * b->iv_step;
      uint8_t iv[16];
      make_iv(b->iv_mode, n, iv);
      ASSERT_TRUE(ref::xts_crypt_unit(b->key, b->dir, iv, b->in_pool.data() + b->offset[i],
                                      b->expected_out_pool.data() + b->offset[i],
                                      b->sector_size));
    }
  }
  b->label = std::to_string(b->key.xts_key_bytes() * 4) + "-bit key, " + dir_name(b->dir) +
             ", " + iv_mode_name(b->iv_mode) + ", " + std::to_string(b->sector_size) +
             "-byte sectors x" + std::to_string(b->count) +
             (b->in_place ? ", in place" : ", out of place") +
             (b->gathered ? ", gathered" : ", contiguous, IV " + std::to_string(b->iv_first) +
                                              " step " + std::to_string(b->iv_step));
}

// A contiguous run from 512-byte sector `start` under `format`.
Batch contiguous(std::size_t key_len, Direction dir, const SectorFormat& format, uint64_t start,
                 std::size_t count, bool in_place) {
  Batch b;
  b.key = random_key(key_len);
  b.dir = dir;
  b.iv_mode = format.iv_mode;
  b.sector_size = format.sector_size;
  b.count = count;
  b.in_place = in_place;
  b.has_format = true;
  b.format = format;
  b.start = start;
  IvSequence ivs;
  EXPECT_TRUE(iv_sequence_for(format, start, &ivs));
  b.iv_first = ivs.first;
  b.iv_step = ivs.step;
  for (std::size_t i = 0; i < count; ++i) b.offset.push_back(i * format.sector_size);
  b.in_pool.resize(count * format.sector_size);
  finish(&b);
  return b;
}

// A contiguous run with IV numbers given directly (only the kernels take these: they
// reach IV numbers, e.g. past 2^64, that no 512-byte start sector maps to).
Batch contiguous_ivs(std::size_t key_len, Direction dir, IvMode mode, uint32_t sector_size,
                     uint64_t iv_first, uint64_t iv_step, std::size_t count, bool in_place) {
  Batch b;
  b.key = random_key(key_len);
  b.dir = dir;
  b.iv_mode = mode;
  b.sector_size = sector_size;
  b.count = count;
  b.in_place = in_place;
  b.iv_first = iv_first;
  b.iv_step = iv_step;
  for (std::size_t i = 0; i < count; ++i) b.offset.push_back(i * sector_size);
  b.in_pool.resize(count * sector_size);
  finish(&b);
  return b;
}

// Sectors scattered over a pool with room for twice as many, shuffled, each at a random
// byte offset within its slot (unaligned) and gaps between them.
Batch gathered(std::size_t key_len, Direction dir, IvMode mode, uint32_t sector_size,
               std::vector<uint64_t> iv_numbers, bool in_place) {
  Batch b;
  b.key = random_key(key_len);
  b.dir = dir;
  b.iv_mode = mode;
  b.sector_size = sector_size;
  b.count = iv_numbers.size();
  b.in_place = in_place;
  b.gathered = true;
  b.iv_numbers = std::move(iv_numbers);
  const std::size_t slot = sector_size + 64;
  std::vector<std::size_t> slots(2 * b.count);
  std::iota(slots.begin(), slots.end(), std::size_t{0});
  std::shuffle(slots.begin(), slots.end(), testing::rng());
  for (std::size_t i = 0; i < b.count; ++i) {
    b.offset.push_back(slots[i] * slot + testing::rng()() % 64);
  }
  b.in_pool.resize(slots.size() * slot);
  finish(&b);
  return b;
}

// Where two pools first differ, for a readable failure.
::testing::AssertionResult same_pool(const std::vector<uint8_t>& got,
                                     const std::vector<uint8_t>& want) {
  if (got == want) return ::testing::AssertionSuccess();
  const auto diff = std::mismatch(got.begin(), got.end(), want.begin());
  return ::testing::AssertionFailure()
         << "output differs from the reference first at pool byte "
         << (diff.first - got.begin()) << " of " << got.size();
}

// Runs `b` through one implementation's BatchFn; returns the output pool.
std::vector<uint8_t> run_kernel(const Batch& b, cpu::BatchFn fn) {
  std::vector<uint8_t> in = b.in_pool;
  std::vector<uint8_t> separate_out(b.in_pool.size(), kPoison);
  std::vector<uint8_t>& out = b.in_place ? in : separate_out;
  std::vector<const uint8_t*> in_ptrs;
  std::vector<uint8_t*> out_ptrs;
  for (std::size_t off : b.offset) {
    in_ptrs.push_back(in.data() + off);
    out_ptrs.push_back(out.data() + off);
  }
  cpu::BatchArgs a{&b.key, b.dir, b.iv_mode, b.sector_size, b.count,
                   b.gathered ? nullptr : in.data(), b.gathered ? in_ptrs.data() : nullptr,
                   b.gathered ? nullptr : out.data(), b.gathered ? out_ptrs.data() : nullptr,
                   b.iv_first, b.iv_step, b.gathered ? b.iv_numbers.data() : nullptr};
  fn(a);
  return out;
}

// Runs `b` through the public entry; returns the output pool.
std::vector<uint8_t> run_public(const Batch& b) {
  std::vector<uint8_t> in = b.in_pool;
  std::vector<uint8_t> separate_out(b.in_pool.size(), kPoison);
  std::vector<uint8_t>& out = b.in_place ? in : separate_out;
  if (b.gathered) {
    std::vector<const uint8_t*> in_ptrs;
    std::vector<uint8_t*> out_ptrs;
    for (std::size_t off : b.offset) {
      in_ptrs.push_back(in.data() + off);
      out_ptrs.push_back(out.data() + off);
    }
    EXPECT_TRUE(cpu::xts_crypt_gathered(b.key, b.dir, b.iv_mode, b.sector_size, b.count,
                                        in_ptrs.data(), out_ptrs.data(), b.iv_numbers.data()));
  } else {
    EXPECT_TRUE(cpu::xts_crypt_sectors(b.key, b.dir, b.format, b.start, in.data(), out.data(),
                                       b.count * b.sector_size));
  }
  return out;
}

// Every runnable Highway target, then the public entry where it can express the batch.
void check_everywhere(const Batch& b) {
  SCOPED_TRACE(b.label);
  for (int64_t target : runnable_targets()) {
    SCOPED_TRACE(std::string("Highway target ") + hwy::TargetName(target));
    ForcedTarget forced(target);
    ASSERT_EQ(cpu::highway::current_target(), target);
    EXPECT_TRUE(same_pool(run_kernel(b, cpu::highway::crypt_batch), b.expected_out_pool));
  }
  if (b.gathered || b.has_format) {
    SCOPED_TRACE(std::string("public entry on ") + cpu::selected_implementation());
    EXPECT_TRUE(same_pool(run_public(b), b.expected_out_pool));
  }
}

TEST(CpuKernels, EveryTargetIncludingEmu128IsCompiledAndRuns) {
  // xts_highway.cc opts EMU128 back in (Highway turns it off under GCC < 14) and compiles
  // every attainable target; SCALAR has no AES ops and must not be the fallback.
  const int64_t compiled = cpu::highway::compiled_targets();
  EXPECT_NE(compiled & HWY_EMU128, 0) << "EMU128 fallback not compiled";
  EXPECT_EQ(compiled & HWY_SCALAR, 0);
  const auto& targets = runnable_targets();
  EXPECT_NE(std::find(targets.begin(), targets.end(), HWY_EMU128), targets.end());
  const int64_t best = cpu::highway::current_target();
  EXPECT_NE(std::find(targets.begin(), targets.end(), best), targets.end());
  std::string names;
  for (int64_t t : targets) names += std::string(hwy::TargetName(t)) + " ";
  std::printf("[ info     ] Highway targets tested: %s; dispatch picks %s; public entry: %s\n",
              names.c_str(), hwy::TargetName(best), cpu::selected_implementation());
}

TEST(CpuKernels, SelectedImplementationFollowsTheDispatchRule) {
  const int64_t best = cpu::highway::current_target();
  const bool avx512 = (best & (HWY_AVX3 | HWY_AVX3_DL | HWY_AVX3_ZEN4 | HWY_AVX3_SPR)) != 0;
  const std::string want = !avx512 && cpu::vaes_avx2::available() ? "VAES-AVX2"
                                                                   : hwy::TargetName(best);
  EXPECT_EQ(cpu::selected_implementation(), want);
}

TEST(CpuKernels, EveryFormatKeySizeAndDirection) {
  std::size_t n = 0;
  for (std::size_t key_len : {32u, 64u}) {
    for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
      for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
        for (bool large : {false, true}) {
          for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
            const SectorFormat f{size, mode, large};
            const uint64_t units = size / 512;
            // A random sector-aligned start; counts cycle through small odd and even sizes.
            const uint64_t start = (testing::rng()() >> 8) / units * units;
            const std::size_t count = std::size_t{1} + (n * 5) % 9;
            check_everywhere(contiguous(key_len, dir, f, start, count, n % 2 == 0));
            ++n;
          }
        }
      }
    }
  }
}

TEST(CpuKernels, BatchSizesAroundGroupsAndChunks) {
  // Tweak groups are 8, 16 or 32 sectors (one chunk of IV blocks) depending on the
  // vector width; sizes straddle each boundary, with odd ones between.
  const std::size_t counts[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65,
                                97, 1024};
  std::size_t n = 0;
  for (std::size_t count : counts) {
    const std::size_t key_len = n % 2 ? 32 : 64;
    const Direction dir = n % 3 == 1 ? Direction::decrypt : Direction::encrypt;
    const IvMode mode = n % 3 == 0 ? IvMode::plain64 : n % 3 == 1 ? IvMode::plain
                                                                 : IvMode::plain64be;
    check_everywhere(contiguous(key_len, dir, SectorFormat{512, mode, false}, 1000 * n, count,
                                n % 2 == 0));
    ++n;
  }
  for (std::size_t count : {1u, 3u, 9u, 17u, 33u}) {
    check_everywhere(contiguous(64, count % 2 ? Direction::decrypt : Direction::encrypt,
                                SectorFormat{4096, IvMode::plain64, false}, 8 * count, count,
                                count % 4 == 1));
  }
}

TEST(CpuKernels, IvNumbersWrapAt2To32And2To64) {
  for (std::size_t key_len : {32u, 64u}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      // plain keeps the low 32 bits: wraps to 0; plain64 carries into byte 4.
      for (IvMode mode : {IvMode::plain, IvMode::plain64, IvMode::plain64be}) {
        check_everywhere(contiguous_ivs(key_len, dir, mode, 512, (uint64_t{1} << 32) - 3, 1, 7,
                                        false));
        check_everywhere(contiguous_ivs(key_len, dir, mode, 1024, kMax64 - 5, 2, 6, true));
        check_everywhere(contiguous_ivs(key_len, dir, mode, 4096, kMax64 - 7, 8, 3, false));
      }
      // Through the public entry: 512-byte sector numbers that wrap 2^64 and 2^32.
      check_everywhere(contiguous(key_len, dir, SectorFormat{2048, IvMode::plain64, false},
                                  kMax64 - 9, 5, true));
      check_everywhere(contiguous(key_len, dir, SectorFormat{512, IvMode::plain, false},
                                  (uint64_t{1} << 32) - 2, 4, false));
      check_everywhere(contiguous(key_len, dir, SectorFormat{4096, IvMode::plain64be, true},
                                  uint64_t{0} - 32, 4, false));
    }
  }
}

TEST(CpuKernels, GatheredScatteredSectors) {
  std::size_t n = 0;
  for (std::size_t key_len : {32u, 64u}) {
    for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        const IvMode mode = static_cast<IvMode>(n % 3);
        const std::size_t count = size == 4096 ? 5 + n % 3 : 9 + (n * 7) % 30;
        std::vector<uint64_t> ivs;
        for (std::size_t i = 0; i < count; ++i) {
          // Random numbers, some at the top of the 64-bit and 32-bit ranges.
          const uint64_t r = testing::rng()();
          ivs.push_back(i % 4 == 1 ? kMax64 - r % 3 : i % 4 == 2 ? 0xffffffffu - r % 3 : r);
        }
        check_everywhere(gathered(key_len, dir, mode, size, ivs, n % 2 == 1));
        ++n;
      }
    }
  }
}

// --- the public entry refuses bad input and writes nothing ---

XtsKey good_key() { return random_key(64); }

void expect_refused(const Status& s, Errc code) {
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), code) << s.message();
}

TEST(CpuKernelsBadInput, EmptyKey) {
  const XtsKey empty;
  std::vector<uint8_t> in(1024, 1), out(1024, kPoison);
  expect_refused(cpu::xts_crypt_sectors(empty, Direction::encrypt, SectorFormat{}, 0, in.data(),
                                        out.data(), in.size()),
                 Errc::invalid_key);
  const uint8_t* ip[] = {in.data()};
  uint8_t* op[] = {out.data()};
  const uint64_t ivs[] = {0};
  expect_refused(cpu::xts_crypt_gathered(empty, Direction::encrypt, IvMode::plain64, 512, 1, ip,
                                         op, ivs),
                 Errc::invalid_key);
  EXPECT_EQ(out, std::vector<uint8_t>(1024, kPoison));
}

TEST(CpuKernelsBadInput, BadFormat) {
  const XtsKey key = good_key();
  std::vector<uint8_t> in(8192, 1), out(8192, kPoison);
  const uint8_t* ip[] = {in.data()};
  uint8_t* op[] = {out.data()};
  const uint64_t ivs[] = {0};
  for (uint32_t size : {0u, 256u, 520u, 8192u}) {
    expect_refused(cpu::xts_crypt_sectors(key, Direction::encrypt,
                                          SectorFormat{size, IvMode::plain64, false}, 0,
                                          in.data(), out.data(), in.size()),
                   Errc::invalid_format);
    expect_refused(cpu::xts_crypt_gathered(key, Direction::encrypt, IvMode::plain64, size, 1,
                                           ip, op, ivs),
                   Errc::invalid_format);
  }
  const auto bad_mode = static_cast<IvMode>(7);
  expect_refused(cpu::xts_crypt_sectors(key, Direction::encrypt, SectorFormat{512, bad_mode},
                                        0, in.data(), out.data(), 512),
                 Errc::invalid_format);
  expect_refused(cpu::xts_crypt_gathered(key, Direction::encrypt, bad_mode, 512, 1, ip, op,
                                         ivs),
                 Errc::invalid_format);
  EXPECT_EQ(out, std::vector<uint8_t>(8192, kPoison));
}

TEST(CpuKernelsBadInput, LengthNullOverlapAndMisalignedStart) {
  const XtsKey key = good_key();
  std::vector<uint8_t> in(4096, 1), out(4096, kPoison);
  const SectorFormat f{};
  for (std::size_t len : {0u, 100u, 513u}) {
    expect_refused(cpu::xts_crypt_sectors(key, Direction::encrypt, f, 0, in.data(), out.data(),
                                          len),
                   Errc::invalid_length);
  }
  const Direction enc = Direction::encrypt;
  expect_refused(cpu::xts_crypt_sectors(key, enc, f, 0, nullptr, out.data(), 512),
                 Errc::invalid_buffer);
  expect_refused(cpu::xts_crypt_sectors(key, enc, f, 0, in.data(), nullptr, 512),
                 Errc::invalid_buffer);
  expect_refused(cpu::xts_crypt_sectors(key, Direction::encrypt, SectorFormat{4096, {}, true}, 3,
                                        in.data(), out.data(), 4096),
                 Errc::invalid_buffer);
  EXPECT_EQ(out, std::vector<uint8_t>(4096, kPoison));
  // Partly overlapping buffers, both ways: the whole buffer must be left as it was.
  std::vector<uint8_t> buf(4096, kPoison);
  expect_refused(cpu::xts_crypt_sectors(key, Direction::encrypt, f, 0, buf.data(),
                                        buf.data() + 512, 2048),
                 Errc::invalid_buffer);
  expect_refused(cpu::xts_crypt_sectors(key, Direction::decrypt, f, 0, buf.data() + 16,
                                        buf.data(), 1024),
                 Errc::invalid_buffer);
  EXPECT_EQ(buf, std::vector<uint8_t>(4096, kPoison));
}

TEST(CpuKernelsBadInput, GatheredNullArraysAndPointers) {
  const XtsKey key = good_key();
  std::vector<uint8_t> a(512, 1), b(512, 2), out0(512, kPoison), out1(512, kPoison);
  const uint8_t* ip[] = {a.data(), b.data()};
  uint8_t* op[] = {out0.data(), out1.data()};
  const uint64_t ivs[] = {1, 2};
  const auto run = [&](const uint8_t* const* in, uint8_t* const* out, const uint64_t* iv) {
    return cpu::xts_crypt_gathered(key, Direction::encrypt, IvMode::plain64, 512, 2, in, out,
                                   iv);
  };
  expect_refused(run(nullptr, op, ivs), Errc::invalid_buffer);
  expect_refused(run(ip, nullptr, ivs), Errc::invalid_buffer);
  expect_refused(run(ip, op, nullptr), Errc::invalid_buffer);
  // A null second sector: the first, valid one must not be written either.
  const uint8_t* ip_null[] = {a.data(), nullptr};
  uint8_t* op_null[] = {out0.data(), nullptr};
  expect_refused(run(ip_null, op, ivs), Errc::invalid_buffer);
  expect_refused(run(ip, op_null, ivs), Errc::invalid_buffer);
  EXPECT_EQ(out0, std::vector<uint8_t>(512, kPoison));
  EXPECT_EQ(out1, std::vector<uint8_t>(512, kPoison));
  // Zero sectors is a valid, empty batch, even with null arrays.
  EXPECT_TRUE(cpu::xts_crypt_gathered(key, Direction::encrypt, IvMode::plain64, 512, 0, nullptr,
                                      nullptr, nullptr));
}

}  // namespace
}  // namespace sectorcrypt
