// Random cross-checks of the reference against OpenSSL EVP aes-xts and libgcrypt XTS:
// random keys, sector numbers (with 0, 2^32-1, 2^64-1), data-unit lengths 16..4096 with
// odd ones (ciphertext stealing), every IV generator and unit, both directions.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "host/peer_ciphers.h"
#include "kernels/xts_key.h"
#include "kernels/xts_reference.h"
#include "tests/test_support.h"

namespace sectorcrypt {
namespace {

const uint64_t kEdgeSectors[] = {0, 0xffffffffull, 0xffffffffffffffffull};

struct Oracles {
  std::unique_ptr<peers::XtsPeer> openssl, gcrypt;
  Oracles(const std::vector<uint8_t>& key, Direction dir)
      : openssl(peers::make_openssl_xts(key.data(), key.size(), dir)),
        gcrypt(peers::make_libgcrypt_xts(key.data(), key.size(), dir)) {}
};

// Every peer agrees with the reference on one data unit.
void expect_unit_matches_peers(const XtsKey& key, Oracles& oracles, Direction dir,
                               const uint8_t iv[16], const std::vector<uint8_t>& in,
                               const std::string& what) {
  std::vector<uint8_t> ours(in.size()), theirs(in.size());
  ASSERT_TRUE(ref::xts_crypt_unit(key, dir, iv, in.data(), ours.data(), in.size())) << what;
  for (peers::XtsPeer* peer : {oracles.openssl.get(), oracles.gcrypt.get()}) {
    std::string error;
    ASSERT_TRUE(peer->crypt_unit(iv, in.data(), theirs.data(), in.size(), &error)) << error;
    ASSERT_EQ(ours, theirs) << what << " differs from " << peer->name();
  }
}

TEST(OracleCrossCheck, RandomDataUnitsAgainstOpensslAndLibgcrypt) {
  auto& gen = testing::rng();
  int cases = 0;
  for (std::size_t key_len : {32u, 64u}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      for (int k = 0; k < 8; ++k) {
        const auto raw = testing::random_xts_key(key_len, gen);
        XtsKey key;
        ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
        Oracles oracles(raw, dir);
        for (int trial = 0; trial < 80; ++trial, ++cases) {
          // Half whole blocks, half odd lengths that need stealing; always 16..4096.
          std::size_t len = 16 + gen() % (4096 - 16 + 1);
          if (trial % 2 == 0) len &= ~std::size_t{15};
          const uint64_t sector = trial < 3 ? kEdgeSectors[trial] : gen();
          const IvMode mode = static_cast<IvMode>(trial % 3);
          uint8_t iv[16];
          make_iv(mode, sector, iv);
          const auto in = testing::random_bytes(len, gen);
          expect_unit_matches_peers(key, oracles, dir, iv, in,
                                    "len " + std::to_string(len) + " sector " +
                                        std::to_string(sector) + " " + iv_mode_name(mode));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
  EXPECT_EQ(cases, 2 * 2 * 8 * 80);
}

// Short units exercise every stealing length 1..15 next to the first block.
TEST(OracleCrossCheck, EveryStealingLengthUpTo64Bytes) {
  auto& gen = testing::rng();
  for (std::size_t key_len : {32u, 64u}) {
    const auto raw = testing::random_xts_key(key_len, gen);
    XtsKey key;
    ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      Oracles oracles(raw, dir);
      for (std::size_t len = 16; len <= 64; ++len) {
        uint8_t iv[16];
        make_iv(IvMode::plain64, gen(), iv);
        expect_unit_matches_peers(key, oracles, dir, iv, testing::random_bytes(len, gen),
                                  "len " + std::to_string(len));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// Sector runs through xts_crypt_sectors against the peers, each sector's IV derived here
// from the dm-crypt rules directly: every sector size, IV generator and IV unit.
TEST(OracleCrossCheck, SectorRunsEveryFormat) {
  auto& gen = testing::rng();
  int cases = 0;
  for (std::size_t key_len : {32u, 64u}) {
    const auto raw = testing::random_xts_key(key_len, gen);
    XtsKey key;
    ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      Oracles oracles(raw, dir);
      for (uint32_t size : {512u, 1024u, 2048u, 4096u}) {
        for (IvMode mode : {IvMode::plain64, IvMode::plain, IvMode::plain64be}) {
          for (bool large : {false, true}) {
            for (int trial = 0; trial < 4; ++trial, ++cases) {
              SectorFormat format{size, mode, large};
              const uint64_t units = size / 512;
              uint64_t start = trial < 3 ? kEdgeSectors[trial] : gen();
              if (large) start -= start % units;  // iv_large_sectors needs alignment
              const std::size_t n = 1 + gen() % 3;
              const auto in = testing::random_bytes(n * size, gen);
              std::vector<uint8_t> ours(in.size()), theirs(in.size());
              ASSERT_TRUE(ref::xts_crypt_sectors(key, dir, format, start, in.data(),
                                                 ours.data(), in.size()));
              for (peers::XtsPeer* peer : {oracles.openssl.get(), oracles.gcrypt.get()}) {
                for (std::size_t i = 0; i < n; ++i) {
                  const uint64_t iv_number = large ? start / units + i : start + i * units;
                  uint8_t iv[16];
                  make_iv(mode, iv_number, iv);
                  std::string error;
                  ASSERT_TRUE(peer->crypt_unit(iv, in.data() + i * size,
                                               theirs.data() + i * size, size, &error))
                      << error;
                }
                ASSERT_EQ(ours, theirs)
                    << peer->name() << " size " << size << " " << iv_mode_name(mode)
                    << (large ? " large" : "") << " start " << start;
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 2 * 2 * 4 * 3 * 2 * 4);
}

// In place gives the same bytes as out of place, including with stealing.
TEST(OracleCrossCheck, InPlaceEqualsOutOfPlace) {
  auto& gen = testing::rng();
  const auto raw = testing::random_xts_key(64, gen);
  XtsKey key;
  ASSERT_TRUE(XtsKey::create(raw.data(), raw.size(), &key));
  for (std::size_t len : {16u, 17u, 31u, 512u, 4095u, 4096u}) {
    for (Direction dir : {Direction::encrypt, Direction::decrypt}) {
      uint8_t iv[16];
      make_iv(IvMode::plain64, gen(), iv);
      auto buf = testing::random_bytes(len, gen);
      std::vector<uint8_t> out(len);
      ASSERT_TRUE(ref::xts_crypt_unit(key, dir, iv, buf.data(), out.data(), len));
      ASSERT_TRUE(ref::xts_crypt_unit(key, dir, iv, buf.data(), buf.data(), len));
      EXPECT_EQ(buf, out) << "len " << len;
    }
  }
}

}  // namespace
}  // namespace sectorcrypt
