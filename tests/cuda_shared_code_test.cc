// The CUDA kernels' host/device code, run on the host: the tables and their per-lane
// shared-memory layout, the IV block, the lane walk over a sector, and both AES variants'
// rounds, emulating a warp's 32 lanes exactly as the kernels run them (xts_walk.cuh),
// checked against the reference and OpenSSL. Needs no CUDA: only SC_HOST_DEVICE headers.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "engine/gpu_devices.h"
#include "host/peer_ciphers.h"
#include "kernels/aes_ct_core.h"
#include "kernels/cuda/aes_bitsliced_core.h"
#include "kernels/cuda/aes_table_core.h"
#include "kernels/cuda/aes_table_layout.h"
#include "kernels/cuda/aes_tables.h"
#include "kernels/cuda/xts_block_core.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

using cuda_core::Block;
using cuda_core::ByteRoundKeys;
using cuda_core::kLanes;

constexpr aes_tables::AesTables kTables = aes_tables::make_aes_tables();

// The shared-memory image a thread block builds (aes_table_layout.h), filled by the same
// function with one thread.
struct ReplicatedTables {
  std::vector<uint32_t> enc = std::vector<uint32_t>(cuda_core::kEncryptTableWords);
  std::vector<uint32_t> dec = std::vector<uint32_t>(cuda_core::kDecryptTableWords);
  ReplicatedTables() {
    cuda_core::fill_direction(enc.data(), kTables.te0, nullptr, 0, 1);
    cuda_core::fill_direction(dec.data(), kTables.td0, kTables.inv_sbox_x4, 0, 1);
  }
};

const ReplicatedTables& replicated() {
  static const ReplicatedTables t;
  return t;
}

enum class Variant { table, constant_time };

const char* variant_name(Variant v) { return v == Variant::table ? "table" : "constant_time"; }

// The table kernel's cipher, host side: the same rounds, tables read through lane
// `lane`'s view of the replicated image.
template <int Rounds>
Block table_encrypt(const Block& b, const ByteRoundKeys& k, int lane) {
  const cuda_core::LaneTables t{replicated().enc.data(), static_cast<uint32_t>(lane)};
  return cuda_core::table_encrypt<Rounds>(b, k, t);
}

template <int Rounds>
Block table_decrypt(const Block& b, const ByteRoundKeys& k, int lane) {
  const cuda_core::LaneTables t{replicated().dec.data(), static_cast<uint32_t>(lane)};
  return cuda_core::table_decrypt<Rounds>(b, k, t);
}

Block table_crypt(Direction dir, const Block& b, const ByteRoundKeys& k, int rounds, int lane) {
  if (dir == Direction::encrypt) {
    return rounds == 10 ? table_encrypt<10>(b, k, lane) : table_encrypt<14>(b, k, lane);
  }
  return rounds == 10 ? table_decrypt<10>(b, k, lane) : table_decrypt<14>(b, k, lane);
}

// The bitsliced kernel's cipher on two blocks, round keys of slot 0 and slot 1.
void bitsliced_crypt(Direction dir, const ByteRoundKeys& k0, const ByteRoundKeys& k1,
                     int rounds, const Block& x0, const Block& x1, Block* y0, Block* y1) {
  if (dir == Direction::encrypt) {
    const bitsliced::PackedKeys<Direction::encrypt, ByteRoundKeys> keys{k0, k1};
    bitsliced::crypt_pair<Direction::encrypt>(keys, rounds, x0, x1, y0, y1);
  } else {
    const bitsliced::PackedKeys<Direction::decrypt, ByteRoundKeys> keys{k0, k1};
    bitsliced::crypt_pair<Direction::decrypt>(keys, rounds, x0, x1, y0, y1);
  }
}

ByteRoundKeys data_keys(const XtsKey& key, Direction dir) {
  return ByteRoundKeys{dir == Direction::encrypt ? key.data_encrypt().rk : key.data_decrypt().rk};
}

// A warp's group of sectors as the kernels run it (xts_walk.cuh, xts_ct.cu): phase 1, lane
// i encrypts sector i's tweak; phase 2, the 32 lanes walk the sectors, one at a time
// (table) or two at a time (bitsliced; alone when the key sizes differ or none is left).
// Sector i uses keys[i] and IV number ivs[i]; `in` may equal `out`.
void emulate_group(Variant v, const std::vector<const XtsKey*>& keys, Direction dir,
                   IvMode mode, const std::vector<uint64_t>& ivs, const uint8_t* in,
                   uint8_t* out, uint32_t sector_size) {
  const std::size_t n = keys.size();
  std::vector<xts::Tweak> tweaks(n);
  for (std::size_t i = 0; i < n; ++i) {
    const ByteRoundKeys k2{keys[i]->tweak_encrypt().rk};
    const int rounds = keys[i]->tweak_encrypt().rounds;
    const int lane = static_cast<int>(i % kLanes);
    tweaks[i] = cuda_core::sector_tweak(
        [&](const Block& b) {
          if (v == Variant::table) return table_crypt(Direction::encrypt, b, k2, rounds, lane);
          Block y, unused;
          bitsliced_crypt(Direction::encrypt, k2, k2, rounds, b, b, &y, &unused);
          return y;
        },
        mode, ivs[i]);
  }
  const uint32_t blocks = sector_size / 16;
  if (v == Variant::table) {
    for (std::size_t i = 0; i < n; ++i) {
      const ByteRoundKeys k1 = data_keys(*keys[i], dir);
      const int rounds = keys[i]->data_encrypt().rounds;
      const uint8_t* src = in + i * sector_size;
      uint8_t* dst = out + i * sector_size;
      for (int lane = 0; lane < kLanes; ++lane) {
        const auto cipher = [&](const Block& b) { return table_crypt(dir, b, k1, rounds, lane); };
        const auto load = [&](uint32_t j) { return cuda_core::load_block(src + 16 * j); };
        const auto store = [&](uint32_t j, const Block& b) { cuda_core::store_block(b, dst + 16 * j); };
        cuda_core::lane_walk(cipher, tweaks[i], lane, blocks, load, store);
      }
    }
    return;
  }
  for (std::size_t s = 0; s < n;) {
    std::size_t s1 = s + 1 < n ? s + 1 : s;
    const int rounds = keys[s]->data_encrypt().rounds;
    if (keys[s1]->data_encrypt().rounds != rounds) s1 = s;
    const bool single = s1 == s;
    const ByteRoundKeys k0 = data_keys(*keys[s], dir), k1 = data_keys(*keys[s1], dir);
    const uint8_t* src[2] = {in + s * sector_size, in + s1 * sector_size};
    uint8_t* dst[2] = {out + s * sector_size, out + s1 * sector_size};
    for (int lane = 0; lane < kLanes; ++lane) {
      const auto cipher = [&](const Block& x0, const Block& x1, Block* y0, Block* y1) {
        bitsliced_crypt(dir, k0, k1, rounds, x0, x1, y0, y1);
      };
      const auto load = [&](int slot, uint32_t j) { return cuda_core::load_block(src[slot] + 16 * j); };
      const auto store = [&](int slot, uint32_t j, const Block& b) {
        if (slot == 1 && single) return;
        cuda_core::store_block(b, dst[slot] + 16 * j);
      };
      cuda_core::lane_walk_pair(cipher, tweaks[s], tweaks[s1], lane, blocks, load, store);
    }
    s = s1 + 1;
  }
}

TEST(CudaSharedCode, TablesMatchTheConstantTimeSbox) {
  EXPECT_EQ(aes_tables::sbox(0x00), 0x63);
  EXPECT_EQ(aes_tables::sbox(0x53), 0xed);  // FIPS-197 §5.1.1 example
  EXPECT_EQ(aes_tables::inv_sbox(0x63), 0x00);
  for (int base = 0; base < 256; base += 8) {
    uint64_t in = 0;
    for (int i = 0; i < 8; ++i) in |= uint64_t(base + i) << (8 * i);
    const uint64_t s = aes_ct::sub_bytes8(in);
    const uint64_t si = aes_ct::inv_sub_bytes8(in);
    for (int i = 0; i < 8; ++i) {
      const int x = base + i;
      const uint8_t sx = static_cast<uint8_t>(s >> (8 * i));
      ASSERT_EQ(aes_tables::sbox(static_cast<uint8_t>(x)), sx) << x;
      ASSERT_EQ(aes_tables::inv_sbox(static_cast<uint8_t>(x)), static_cast<uint8_t>(si >> (8 * i)));
      ASSERT_EQ((kTables.te0[x] >> 8) & 0xff, sx);
      ASSERT_EQ(kTables.inv_sbox_x4[x], static_cast<uint32_t>(si >> (8 * i) & 0xff) * 0x01010101u);
    }
  }
}

// The bitsliced S-box and its inverse on all 256 bytes, and the packing's layout.
TEST(CudaSharedCode, BitslicedSboxAndLayout) {
  for (int base = 0; base < 256; base += 32) {
    uint8_t a[16], b[16];
    for (int i = 0; i < 16; ++i) {
      a[i] = static_cast<uint8_t>(base + i);
      b[i] = static_cast<uint8_t>(base + 16 + i);
    }
    const bitsliced::State packed = bitsliced::pack(cuda_core::load_block(a), cuda_core::load_block(b));
    // Byte (row r, column c) of slot s, bit i, is bit c + 4 s + 8 r of plane i.
    for (int i = 0; i < 8; ++i) {
      for (int slot = 0; slot < 2; ++slot) {
        for (int byte = 0; byte < 16; ++byte) {
          const int bit = byte / 4 + 4 * slot + 8 * (byte % 4);
          const uint8_t v = slot ? b[byte] : a[byte];
          ASSERT_EQ((packed.p[i] >> bit) & 1, (v >> i) & 1u);
        }
      }
    }
    bitsliced::State s = packed, si = packed;
    bitsliced::sub_bytes(s);
    bitsliced::inv_sub_bytes(si);
    Block s0, s1, i0, i1;
    bitsliced::unpack(s, &s0, &s1);
    bitsliced::unpack(si, &i0, &i1);
    uint8_t out[4][16];
    cuda_core::store_block(s0, out[0]);
    cuda_core::store_block(s1, out[1]);
    cuda_core::store_block(i0, out[2]);
    cuda_core::store_block(i1, out[3]);
    for (int i = 0; i < 16; ++i) {
      ASSERT_EQ(out[0][i], aes_tables::sbox(a[i])) << int(a[i]);
      ASSERT_EQ(out[1][i], aes_tables::sbox(b[i])) << int(b[i]);
      ASSERT_EQ(out[2][i], aes_tables::inv_sbox(a[i])) << int(a[i]);
      ASSERT_EQ(out[3][i], aes_tables::inv_sbox(b[i])) << int(b[i]);
    }
  }
}

// Every lane reads its own bank whatever the byte, and reads the right entry.
TEST(CudaSharedCode, ReplicatedLayoutIsPerLaneBankAndExact) {
  const auto& r = replicated();
  for (int lane = 0; lane < kLanes; ++lane) {
    const cuda_core::LaneTables te{r.enc.data(), static_cast<uint32_t>(lane)};
    const cuda_core::LaneTables td{r.dec.data(), static_cast<uint32_t>(lane)};
    for (uint32_t x = 0; x < 256; ++x) {
      for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(te.index(i, x) % 32, static_cast<uint32_t>(lane));
        ASSERT_EQ(te.col(i, x), aes_tables::rotl32(kTables.te0[x], 8 * i));
        ASSERT_EQ(td.col(i, x), aes_tables::rotl32(kTables.td0[x], 8 * i));
      }
      ASSERT_EQ(td.index(4, x) % 32, static_cast<uint32_t>(lane));
      ASSERT_EQ(td.inv_sbox_x4(x) & 0xff, aes_tables::inv_sbox(static_cast<uint8_t>(x)));
    }
  }
}

TEST(CudaSharedCode, IvBlockMatchesMakeIv) {
  for (uint64_t n : {uint64_t{0}, uint64_t{1}, uint64_t{0xffffffff}, uint64_t{0x0123456789abcdef},
                     ~uint64_t{0}}) {
    for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
      uint8_t expected[16], got[16];
      make_iv(mode, n, expected);
      cuda_core::store_block(cuda_core::iv_block(mode, n), got);
      EXPECT_EQ(0, std::memcmp(expected, got, 16)) << iv_mode_name(mode) << " " << n;
    }
  }
}

// The lane walk reaches every block's tweak T * x^j: compare with the serial doubling.
TEST(CudaSharedCode, LaneWalkTweaksAreSerialDoublings) {
  auto& gen = testing::rng();
  for (int trial = 0; trial < 64; ++trial) {
    const xts::Tweak t0{gen(), trial == 0 ? ~uint64_t{0} : gen()};
    std::vector<xts::Tweak> serial(256);
    serial[0] = t0;
    for (int j = 1; j < 256; ++j) serial[j] = xts::mul_x(serial[j - 1]);
    for (int lane = 0; lane < kLanes; ++lane) {
      xts::Tweak t = cuda_core::lane_first_tweak(t0, lane);
      for (int j = lane; j < 256; j += kLanes) {
        ASSERT_EQ(t.lo, serial[j].lo) << j;
        ASSERT_EQ(t.hi, serial[j].hi) << j;
        t = cuda_core::lane_next_tweak(t);
      }
    }
  }
}

// Whole batches through the emulated warps: both variants, key sizes, directions, every
// dm-crypt sector size and IV mode, both IV units, in place and out of place; against
// ref::xts_crypt_sectors for the run and OpenSSL per sector.
TEST(CudaSharedCode, EmulatedWarpsMatchReferenceAndOpenssl) {
  auto& gen = testing::rng();
  int cases = 0;
  for (Variant v : {Variant::table, Variant::constant_time}) {
    for (std::size_t key_len : {32u, 64u}) {
      const auto raw = testing::random_xts_key(key_len, gen);
      XtsKey key;
      ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        const auto openssl = peers::make_openssl_xts(raw.data(), raw.size(), dir);
        for (uint32_t sector_size : {512u, 1024u, 2048u, 4096u}) {
          for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
            for (bool large : {false, true}) {
              const SectorFormat format{sector_size, mode, large};
              const std::size_t count = 3;
              uint64_t start = gen();
              if (cases % 5 == 0) start = ~uint64_t{0} - 8;  // IV numbers wrap
              if (large) start -= start % (sector_size / 512);
              const std::size_t bytes = count * sector_size;
              const auto in = testing::random_bytes(bytes, gen);
              std::vector<uint8_t> expected(bytes), ours(bytes, 0xa5), inplace = in;
              ASSERT_TRUE(ref::xts_crypt_sectors(key, dir, format, start, in.data(),
                                                 expected.data(), bytes));
              IvSequence ivs;
              ASSERT_TRUE(iv_sequence_for(format, start, &ivs));
              std::vector<uint64_t> iv_numbers;
              for (std::size_t i = 0; i < count; ++i) iv_numbers.push_back(ivs.first + i * ivs.step);
              const std::vector<const XtsKey*> keys(count, &key);
              emulate_group(v, keys, dir, mode, iv_numbers, in.data(), ours.data(), sector_size);
              emulate_group(v, keys, dir, mode, iv_numbers, inplace.data(), inplace.data(),
                            sector_size);
              for (std::size_t i = 0; i < count; ++i) {
                const std::size_t off = i * sector_size;
                uint8_t iv_bytes[16];
                make_iv(mode, iv_numbers[i], iv_bytes);
                std::vector<uint8_t> theirs(sector_size);
                std::string error;
                ASSERT_TRUE(openssl->crypt_unit(iv_bytes, in.data() + off, theirs.data(),
                                                sector_size, &error))
                    << error;
                ASSERT_EQ(0, std::memcmp(theirs.data(), ours.data() + off, sector_size))
                    << "OpenSSL differs, sector " << i;
              }
              const std::string what = std::string(variant_name(v)) + " key " +
                                       std::to_string(key_len) + " sector " +
                                       std::to_string(sector_size) + " " + iv_mode_name(mode) +
                                       (large ? " large" : "") +
                                       (dir == Direction::encrypt ? " enc" : " dec");
              ASSERT_EQ(expected, ours) << what;
              ASSERT_EQ(expected, inplace) << what << " in place";
              ++cases;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 2 * 2 * 2 * 4 * 3 * 2);
}

// The kernels also take any multiple of 16 in 512..4096, where some lanes sit out the
// last step: compare with the reference's single data unit.
TEST(CudaSharedCode, EmulatedWarpsOnUnevenSectorSizes) {
  auto& gen = testing::rng();
  for (Variant v : {Variant::table, Variant::constant_time}) {
    for (std::size_t key_len : {32u, 64u}) {
      const auto raw = testing::random_xts_key(key_len, gen);
      XtsKey key;
      ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
      for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
        for (uint32_t size : {528u, 1008u, 4080u}) {
          const uint64_t n = gen();
          const auto in = testing::random_bytes(size, gen);
          std::vector<uint8_t> expected(size), ours(size, 0xa5);
          uint8_t iv[16];
          make_iv(IvMode::plain64, n, iv);
          ASSERT_TRUE(ref::xts_crypt_unit(key, dir, iv, in.data(), expected.data(), size));
          emulate_group(v, {&key}, dir, IvMode::plain64, {n}, in.data(), ours.data(), size);
          ASSERT_EQ(expected, ours) << variant_name(v) << " " << size;
        }
      }
    }
  }
}

// Groups whose sectors use different keys, of both sizes: pairs with two keys, pairs that
// must split because the key sizes differ, odd groups.
TEST(CudaSharedCode, EmulatedWarpsWithMixedKeys) {
  auto& gen = testing::rng();
  std::vector<XtsKey> table(5);
  for (std::size_t k = 0; k < table.size(); ++k) {
    const auto raw = testing::random_xts_key(k < 3 ? 64 : 32, gen);
    ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &table[k]));
  }
  for (Variant v : {Variant::table, Variant::constant_time}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      for (std::size_t count : {1u, 2u, 7u, 32u}) {
        const uint32_t size = 512u << (gen() % 4);
        std::vector<const XtsKey*> keys;
        std::vector<uint64_t> ivs;
        for (std::size_t i = 0; i < count; ++i) {
          keys.push_back(&table[gen() % table.size()]);
          ivs.push_back(gen());
        }
        const auto in = testing::random_bytes(count * size, gen);
        std::vector<uint8_t> ours(in.size(), 0xa5), inplace = in;
        emulate_group(v, keys, dir, IvMode::plain64, ivs, in.data(), ours.data(), size);
        emulate_group(v, keys, dir, IvMode::plain64, ivs, inplace.data(), inplace.data(), size);
        for (std::size_t i = 0; i < count; ++i) {
          uint8_t iv[16];
          make_iv(IvMode::plain64, ivs[i], iv);
          std::vector<uint8_t> expected(size);
          ASSERT_TRUE(ref::xts_crypt_unit(*keys[i], dir, iv, in.data() + i * size,
                                          expected.data(), size));
          ASSERT_EQ(0, std::memcmp(expected.data(), ours.data() + i * size, size))
              << variant_name(v) << " sector " << i << " of " << count;
          ASSERT_EQ(0, std::memcmp(expected.data(), inplace.data() + i * size, size))
              << variant_name(v) << " in place, sector " << i << " of " << count;
        }
      }
    }
  }
}

TEST(CudaSharedCode, DiscoverGpusExplainsAnEmptyInventory) {
  const GpuInventory inv = discover_gpus();
  if (!inv.usable()) {
    EXPECT_FALSE(inv.why_none.empty());
#if !defined(SECTORCRYPT_HAVE_CUDA)
    EXPECT_NE(inv.why_none.find("built without CUDA"), std::string::npos) << inv.why_none;
#endif
    std::printf("discover_gpus: %s\n", inv.why_none.c_str());
    return;
  }
  for (const GpuInfo& g : inv.gpus) {
    EXPECT_GE(g.ordinal, 0);
    EXPECT_FALSE(g.name.empty());
    EXPECT_GE(g.compute_major, 9);
  }
}

}  // namespace
}  // namespace sectorcrypt
