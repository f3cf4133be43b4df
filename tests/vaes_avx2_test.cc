// The VAES-AVX2 path against the reference, byte for byte, over everything BatchArgs can
// describe: both key sizes, every sector size, IV generator and IV unit, both directions,
// in place and out of place, contiguous and gathered sectors, IV numbers as a sequence or
// per sector, batch sizes around the 16-sector tweak group and the 8-register chunk, and
// sector numbers that wrap at 2^32 and 2^64. Skips where the CPU lacks VAES.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "host/peer_ciphers.h"
#include "kernels/cpu/xts_batch_args.h"
#include "kernels/cpu/xts_vaes_avx2.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

#define SKIP_WITHOUT_VAES()                                                              \
  do {                                                                                   \
    if (!cpu::vaes_avx2::available()) {                                                  \
      GTEST_SKIP() << "CPU or OS lacks AVX2+VAES+VPCLMULQDQ with YMM state; the "        \
                      "VAES-AVX2 path is never selected here";                           \
    }                                                                                    \
  } while (0)

XtsKey make_key(const std::vector<uint8_t>& raw) {
  XtsKey key;
  EXPECT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
  return key;
}

std::string describe(std::size_t key_len, Direction dir, IvMode mode, uint32_t sector_size,
                     std::size_t count, bool in_place) {
  return std::to_string(key_len * 4) + "-bit XTS key, " +
         (dir == Direction::encrypt ? "encrypt" : "decrypt") + ", " + iv_mode_name(mode) +
         ", " + std::to_string(sector_size) + "-byte sectors x" + std::to_string(count) +
         (in_place ? ", in place" : ", out of place");
}

// A contiguous run from 512-byte sector `start`, numbered per `format`, against
// ref::xts_crypt_sectors.
void check_contiguous(const std::vector<uint8_t>& raw, Direction dir, const SectorFormat& format,
                      uint64_t start, std::size_t count, bool in_place) {
  SCOPED_TRACE(describe(raw.size(), dir, format.iv_mode, format.sector_size, count, in_place) +
               (format.iv_large_sectors ? ", IV per sector" : ", IV per 512 bytes") +
               ", start " + std::to_string(start));
  const XtsKey key = make_key(raw);
  const std::size_t bytes = count * format.sector_size;
  const auto in = testing::random_bytes(bytes);
  std::vector<uint8_t> expected(bytes), out(bytes);
  ASSERT_TRUE(ref::xts_crypt_sectors(key, dir, format, start, in.data(), expected.data(), bytes));

  IvSequence ivs;
  ASSERT_TRUE(iv_sequence_for(format, start, &ivs));
  if (in_place) out = in;
  const uint8_t* src = in_place ? out.data() : in.data();
  const cpu::BatchArgs a{&key, dir, format.iv_mode, format.sector_size, count, src, nullptr,
                         out.data(), nullptr, ivs.first, ivs.step, nullptr};
  cpu::vaes_avx2::crypt_batch(a);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t off = i * format.sector_size;
    ASSERT_EQ(0, std::memcmp(out.data() + off, expected.data() + off, format.sector_size))
        << "sector " << i << " of " << count << " differs";
  }
}

TEST(VaesAvx2, EveryFormatKeySizeDirectionAndPlacement) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  // Counts cycle through small values so that each combination stays cheap for the
  // reference; the larger batch sizes have their own test.
  const std::size_t counts[] = {1, 2, 3, 5};
  int combo = 0;
  for (std::size_t key_len : {32u, 64u}) {
    const auto raw = testing::random_xts_key(key_len, gen);
    for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
      for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
        for (bool large : {false, true}) {
          for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
            for (bool in_place : {false, true}) {
              const SectorFormat format{size, mode, large};
              // Aligned start for iv_large_sectors; any 64-bit value otherwise.
              const uint64_t units = size / 512;
              const uint64_t start = (gen() >> 1) / units * units;
              check_contiguous(raw, dir, format, start, counts[combo++ % 4], in_place);
            }
          }
        }
      }
    }
  }
}

TEST(VaesAvx2, BatchSizesAroundGroupAndChunkBoundaries) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  const std::size_t counts[] = {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 1024};
  int i = 0;
  for (std::size_t count : counts) {
    const std::size_t key_len = i % 2 ? 64 : 32;
    const Direction dir = (i / 2) % 2 ? Direction::decrypt : Direction::encrypt;
    const IvMode mode = static_cast<IvMode>(i % 3);
    const SectorFormat format{count >= 64 ? 512u : 1024u, mode, false};
    check_contiguous(testing::random_xts_key(key_len, gen), dir, format, gen(), count,
                     i % 3 == 1);
    ++i;
  }
}

TEST(VaesAvx2, SectorNumbersThatWrapAt2To32And2To64) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  const uint64_t starts[] = {0xffffffffull - 40, 0xffffffffull - 3, 0xffffffffffffffffull - 40,
                             0xffffffffffffffffull - 7, 0xffffffffffffffffull};
  for (uint64_t start : starts) {
    for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
      for (uint32_t size : {512u, 4096u}) {
        for (bool large : {false, true}) {
          const uint64_t units = size / 512;
          const uint64_t s = large ? start / units * units : start;
          const std::size_t key_len = (start & 1) ? 64 : 32;
          check_contiguous(testing::random_xts_key(key_len, gen),
                           s % 2 ? Direction::decrypt : Direction::encrypt,
                           SectorFormat{size, mode, large}, s, size == 512 ? 17 : 3, false);
        }
      }
    }
  }
}

// Gathered: sectors scattered in a buffer in random order, per-sector IV numbers (with
// wrap-around values), some in place, the rest written elsewhere.
TEST(VaesAvx2, GatheredPointersAndPerSectorIvNumbers) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  for (std::size_t key_len : {32u, 64u}) {
    for (uint32_t size : {512u, 2048u, 4096u}) {
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        const std::size_t count = size == 512 ? 37 : 9;
        const IvMode mode = static_cast<IvMode>(gen() % 3);
        SCOPED_TRACE(describe(key_len, dir, mode, size, count, false) + ", gathered");
        const XtsKey key = make_key(testing::random_xts_key(key_len, gen));
        // Slots twice the batch, with 16-byte misalignment, so sectors are not adjacent.
        const std::size_t stride = size + 16;
        std::vector<uint8_t> in_buf = testing::random_bytes(2 * count * stride + 16);
        std::vector<uint8_t> out_buf(in_buf.size());
        std::vector<std::size_t> slots(2 * count);
        std::iota(slots.begin(), slots.end(), 0);
        std::shuffle(slots.begin(), slots.end(), gen);
        std::vector<const uint8_t*> in_ptrs(count);
        std::vector<uint8_t*> out_ptrs(count);
        std::vector<uint64_t> ivs(count);
        std::vector<std::vector<uint8_t>> expected(count, std::vector<uint8_t>(size));
        for (std::size_t i = 0; i < count; ++i) {
          uint8_t* p = in_buf.data() + 16 + slots[i] * stride;
          in_ptrs[i] = p;
          out_ptrs[i] = i % 3 == 0 ? p : out_buf.data() + 16 + slots[count + i] * stride;
          ivs[i] = i < 3 ? ~uint64_t{0} - i : i < 5 ? 0xffffffffull + 2 - i : gen();
          uint8_t iv[16];
          make_iv(mode, ivs[i], iv);
          ASSERT_TRUE(ref::xts_crypt_unit(key, dir, iv, p, expected[i].data(), size));
        }
        const cpu::BatchArgs a{&key, dir, mode, size, count, nullptr, in_ptrs.data(),
                               nullptr, out_ptrs.data(), 0, 0, ivs.data()};
        cpu::vaes_avx2::crypt_batch(a);
        for (std::size_t i = 0; i < count; ++i) {
          ASSERT_EQ(0, std::memcmp(out_ptrs[i], expected[i].data(), size)) << "sector " << i;
        }
      }
    }
  }
}

// A larger volume against OpenSSL (fast), then back through decryption: 1 MiB per case.
TEST(VaesAvx2, LargeBatchesAgainstOpensslAndRoundTrip) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  for (std::size_t key_len : {32u, 64u}) {
    const auto raw = testing::random_xts_key(key_len, gen);
    const XtsKey key = make_key(raw);
    auto openssl = peers::make_openssl_xts(raw.data(), raw.size(), Direction::encrypt);
    const uint32_t size = 4096;
    const std::size_t count = 256;
    const uint64_t first = gen();
    const auto plain = testing::random_bytes(count * size);
    std::vector<uint8_t> ours(plain.size()), theirs(plain.size());
    cpu::vaes_avx2::crypt_batch(cpu::BatchArgs{&key, Direction::encrypt, IvMode::plain64, size,
                                               count, plain.data(), nullptr, ours.data(),
                                               nullptr, first, 8, nullptr});
    for (std::size_t i = 0; i < count; ++i) {
      uint8_t iv[16];
      make_iv(IvMode::plain64, first + 8 * i, iv);
      std::string error;
      ASSERT_TRUE(openssl->crypt_unit(iv, plain.data() + i * size, theirs.data() + i * size,
                                      size, &error))
          << error;
    }
    ASSERT_EQ(ours, theirs) << key_len * 4 << "-bit key";
    cpu::vaes_avx2::crypt_batch(cpu::BatchArgs{&key, Direction::decrypt, IvMode::plain64, size,
                                               count, ours.data(), nullptr, ours.data(),
                                               nullptr, first, 8, nullptr});
    ASSERT_EQ(ours, plain) << key_len * 4 << "-bit key round trip";
  }
}

// Batches of kStreamingStoreMinBytes and more, out of place and aligned, take the
// non-temporal store path; the same data in place and misaligned takes the other.
TEST(VaesAvx2, StreamingStorePathMatchesOpenssl) {
  SKIP_WITHOUT_VAES();
  auto& gen = testing::rng();
  const auto raw = testing::random_xts_key(32, gen);
  const XtsKey key = make_key(raw);
  auto openssl = peers::make_openssl_xts(raw.data(), raw.size(), Direction::encrypt);
  const uint32_t size = 4096;
  const std::size_t count = cpu::vaes_avx2::kStreamingStoreMinBytes / size + 3;
  const uint64_t first = gen();
  const auto plain = testing::random_bytes(count * size);
  std::vector<uint8_t> expected(plain.size());
  for (std::size_t i = 0; i < count; ++i) {
    uint8_t iv[16];
    make_iv(IvMode::plain64, first + i, iv);
    std::string error;
    ASSERT_TRUE(openssl->crypt_unit(iv, plain.data() + i * size, expected.data() + i * size,
                                    size, &error))
        << error;
  }
  // 32-byte aligned (streaming), then 16 bytes off (regular stores).
  std::vector<uint8_t> storage(plain.size() + 64);
  uint8_t* aligned = storage.data() + (32 - reinterpret_cast<std::uintptr_t>(storage.data()) % 32);
  for (uint8_t* out : {aligned, aligned + 16}) {
    cpu::vaes_avx2::crypt_batch(cpu::BatchArgs{&key, Direction::encrypt, IvMode::plain64, size,
                                               count, plain.data(), nullptr, out, nullptr,
                                               first, 1, nullptr});
    ASSERT_EQ(0, std::memcmp(out, expected.data(), expected.size()))
        << (out == aligned ? "aligned" : "misaligned") << " output";
  }
}

}  // namespace
}  // namespace sectorcrypt
